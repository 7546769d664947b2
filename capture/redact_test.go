package capture

import (
	"slices"
	"strings"
	"testing"

	"github.com/herd-replay/herd/tape"
)

// TestRedactionHeaders: the header expressions are matched against whole
// names, case-insensitively, and the tape's metadata records them as given.
func TestRedactionHeaders(t *testing.T) {
	r := Redaction{Headers: []string{`x-(a|b)-token`, `(?:session)`}, Key: []byte("k")}
	m := r.Meta()
	want := []string{"re:x-(a|b)-token", "re:(?:session)"}
	if got := m.Headers[len(m.Headers)-2:]; !m.Enabled || !slices.Equal(got, want) {
		t.Errorf("meta headers %q, want them to end with %q", m.Headers, want)
	}
	rd, err := newRedactor(r)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]bool{
		"X-A-Token": true, "x-b-token": true, "Session": true, "Cookie": true,
		"X-C-Token": false, "X-A-Token-2": false, "Sessions": false, "Host": false,
	} {
		fs := []tape.Field{{Name: name, Value: "v"}}
		if got := rd.fields(fs); got != secret || strings.HasPrefix(fs[0].Value, tape.RedactedPrefix) != secret {
			t.Errorf("%s: redacted %v (%q), want %v", name, got, fs[0].Value, secret)
		}
	}
	if _, err := newRedactor(Redaction{Headers: []string{"("}}); err == nil || !strings.Contains(err.Error(), `header pattern "("`) {
		t.Errorf("bad expression: got %v", err)
	}
}
