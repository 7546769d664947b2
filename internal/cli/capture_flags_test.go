package cli

import (
	"strings"
	"testing"
)

// TestCaptureAgentFlags: the agent's flags need a live capture and rotated
// files, and say so.
func TestCaptureAgentFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-i", "lo", "--port", "80", "--keep", "3"}, "need --rotate"},
		{[]string{"-i", "lo", "--port", "80", "--keep-size", "1GiB"}, "need --rotate"},
		{[]string{"-i", "lo", "--port", "80", "--max-cpu", "0.5"}, "need --rotate"},
		{[]string{"-i", "lo", "--port", "80", "--rotate", "1m", "--keep", "-1"}, "--keep -1"},
		{[]string{"-i", "lo", "--port", "80", "--rotate", "1m", "--keep-size", "lots"}, "--keep-size"},
		{[]string{"-i", "lo", "--port", "80", "--rotate", "1m", "--max-cpu", "-1"}, "--max-cpu"},
		{[]string{"--pcap", "x.pcap", "--metrics-addr", ":9090"}, "apply to live capture"},
	}
	for _, c := range cases {
		_, stderr, code := run(t, append(append([]string{"capture"}, c.args...), "-o", t.TempDir()+"/o.tape")...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("herd capture %v: exit %d, want %d and %q\n%s", c.args, code, ExitUsage, c.want, stderr)
		}
	}
}
