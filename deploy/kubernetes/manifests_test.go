// Package kubernetes holds herd's example manifests; its test decodes each
// strictly into the Kubernetes API types (an unknown or misspelt field is
// an error) and checks what docs/kubernetes.md promises of them.
package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// objects decodes every manifest of this directory strictly, by kind.
func objects(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "apps/v1 DaemonSet":
				obj = &appsv1.DaemonSet{}
			case "batch/v1 Job":
				obj = &batchv1.Job{}
			case "v1 PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			default:
				t.Fatalf("%s document %d: unexpected %s %s", f, i+1, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i+1, tm.Kind, err)
			}
			name := yamlName(t, doc)
			out[tm.Kind+"/"+name] = obj
		}
	}
	return out
}

func yamlName(t *testing.T, doc []byte) string {
	var om struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &om); err != nil || om.Metadata.Name == "" {
		t.Fatalf("a manifest without a name: %v", err)
	}
	return om.Metadata.Name
}

func get[T any](t *testing.T, objs map[string]any, key string) T {
	t.Helper()
	o, ok := objs[key].(T)
	if !ok {
		t.Fatalf("no %s among the manifests", key)
	}
	return o
}

// flag returns the value after name in args, or "".
func flag(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

// checkCapture: a capture agent is non-root with NET_RAW as its only
// capability, records live with a port filter, rotates and bounds its
// files, and serves the metrics port Prometheus is told to scrape.
func checkCapture(t *testing.T, what string, tmpl corev1.PodTemplateSpec) {
	t.Helper()
	c := container(t, tmpl.Spec, "herd-capture")
	if c.Args[0] != "capture" || flag(c.Args, "-i") == "" || flag(c.Args, "--port") == "" || flag(c.Args, "--rotate") == "" {
		t.Errorf("%s: args %q: want capture -i IFACE --port N --rotate ...", what, c.Args)
	}
	if flag(c.Args, "--keep") == "" && flag(c.Args, "--keep-size") == "" {
		t.Errorf("%s: an agent must bound its files (--keep or --keep-size)", what)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: must run as a non-root user", what)
	} else if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_RAW"}) {
		t.Errorf("%s: capabilities %+v: want all dropped and NET_RAW only", what, sc.Capabilities)
	} else if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", what)
	}
	addr := flag(c.Args, "--metrics-addr")
	_, port, ok := strings.Cut(addr, ":")
	if !ok || port == "" {
		t.Fatalf("%s: --metrics-addr %q", what, addr)
	}
	a := tmpl.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != port || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: scrape annotations %v for metrics on %s", what, a, addr)
	}
	exposed := false
	for _, p := range c.Ports {
		exposed = exposed || strconv.Itoa(int(p.ContainerPort)) == port
	}
	if !exposed {
		t.Errorf("%s: the metrics port %s is not a container port", what, port)
	}
	if tmpl.Spec.TerminationGracePeriodSeconds == nil || *tmpl.Spec.TerminationGracePeriodSeconds < 10 {
		t.Errorf("%s: leave SIGTERM time to close the tape", what)
	}
}

func TestCaptureSidecar(t *testing.T) {
	objs := objects(t)
	d := get[*appsv1.Deployment](t, objs, "Deployment/shop")
	checkCapture(t, "sidecar", d.Spec.Template)
	if d.Spec.Template.Spec.HostNetwork {
		t.Error("the sidecar shares its pod's network namespace, not the host's")
	}
}

func TestCaptureDaemonSet(t *testing.T) {
	objs := objects(t)
	ds := get[*appsv1.DaemonSet](t, objs, "DaemonSet/herd-capture")
	checkCapture(t, "daemonset", ds.Spec.Template)
	if !ds.Spec.Template.Spec.HostNetwork || ds.Spec.Template.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Error("the DaemonSet captures in the host's network namespace")
	}
}

// TestShardedRamp: the Indexed Job runs N shards at once, each with
// --shard auto/N, one coordination directory and its own results file;
// the merge Job merges exactly those N files and renders the HTML.
func TestShardedRamp(t *testing.T) {
	objs := objects(t)
	j := get[*batchv1.Job](t, objs, "Job/herd-ramp")
	s := j.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion || s.Completions == nil || s.Parallelism == nil || *s.Completions != *s.Parallelism {
		t.Fatalf("herd-ramp: want an Indexed Job with parallelism = completions")
	}
	n := int(*s.Completions)
	if s.BackoffLimit == nil || *s.BackoffLimit != 0 || s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Error("herd-ramp: a shard must not be restarted: it could not rejoin the ramp")
	}
	c := container(t, s.Template.Spec, "herd")
	if c.Args[0] != "ramp" || flag(c.Args, "--shard") != fmt.Sprintf("auto/%d", n) || flag(c.Args, "--target") == "" {
		t.Errorf("herd-ramp args %q: want ramp ... --shard auto/%d", c.Args, n)
	}
	coord, results := flag(c.Args, "--coordinate"), flag(c.Args, "--json")
	if !strings.HasPrefix(coord, "/shared/") || !strings.Contains(results, "$(JOB_COMPLETION_INDEX)") || flag(c.Args, "--start-at") == "" {
		t.Errorf("herd-ramp: --coordinate %q, --json %q: want both on the shared volume, one results file per index, and --start-at", coord, results)
	}
	m := get[*batchv1.Job](t, objs, "Job/herd-merge")
	merge := container(t, m.Spec.Template.Spec, "merge")
	var want []string
	for i := range n {
		want = append(want, strings.ReplaceAll(results, "$(JOB_COMPLETION_INDEX)", strconv.Itoa(i)))
	}
	if !slices.Equal(merge.Args[:2], []string{"report", "merge"}) || !slices.Equal(merge.Args[2:2+n], want) {
		t.Errorf("herd-merge args %q: want report merge %q", merge.Args, want)
	}
	html := container(t, m.Spec.Template.Spec, "html")
	if html.Args[1] != flag(merge.Args, "-o") || flag(html.Args, "--format") != "html" {
		t.Errorf("the html container renders %q, the merge writes %q", html.Args[1], flag(merge.Args, "-o"))
	}
	for _, e := range append(c.Env, merge.Env...) {
		if e.Name == "RUN_ID" && e.Value != "run-1" {
			t.Errorf("RUN_ID %q: the ramp and the merge must name the same run", e.Value)
		}
	}
}

// TestVolumes: every claim a pod mounts is defined, and the shared ones
// are ReadWriteMany.
func TestVolumes(t *testing.T) {
	objs := objects(t)
	claims := map[string]bool{}
	for k, o := range objs {
		if pvc, ok := o.(*corev1.PersistentVolumeClaim); ok {
			claims[strings.TrimPrefix(k, "PersistentVolumeClaim/")] = slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany)
		}
	}
	specs := map[string]corev1.PodSpec{
		"sidecar":    get[*appsv1.Deployment](t, objs, "Deployment/shop").Spec.Template.Spec,
		"daemonset":  get[*appsv1.DaemonSet](t, objs, "DaemonSet/herd-capture").Spec.Template.Spec,
		"herd-ramp":  get[*batchv1.Job](t, objs, "Job/herd-ramp").Spec.Template.Spec,
		"herd-merge": get[*batchv1.Job](t, objs, "Job/herd-merge").Spec.Template.Spec,
	}
	for what, spec := range specs {
		for _, v := range spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			rwx, ok := claims[v.PersistentVolumeClaim.ClaimName]
			if !ok || !rwx {
				t.Errorf("%s mounts claim %s: defined %v, ReadWriteMany %v", what, v.PersistentVolumeClaim.ClaimName, ok, rwx)
			}
		}
	}
}
