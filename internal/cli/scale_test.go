package cli

import (
	"testing"

	"github.com/herd-replay/herd/internal/results"
)

// TestParseScale: every spelling people type, and every one herd prints,
// reads back as the multiple.
func TestParseScale(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
	}{
		{"3", 3}, {"3x", 3}, {"3X", 3}, {" 2.5x ", 2.5}, {"300%", 3}, {"250 %", 2.5},
		{"~2.125x", 2.125}, {"~3.125", 3.125}, {"3×", 3}, {"3x (again)", 3}, {"0.5x", 0.5},
	} {
		got, err := parseScale(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseScale(%q): got %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "x", "~", "0", "-1x", "abc", "1e400", "NaNx", "3xx", "~~3x", "3x%"} {
		if v, err := parseScale(bad); err == nil {
			t.Errorf("parseScale(%q): got %v, want an error", bad, v)
		}
	}
	// What herd prints for a step parses back to that step's scale.
	for _, st := range []results.Step{{Scale: 2.125, Refinement: true}, {Scale: 3, Retry: true}, {Scale: 1.5}} {
		if got, err := parseScale(st.Label()); err != nil || got != st.Scale {
			t.Errorf("parseScale(%q) (a step's label): got %v, %v; want %v", st.Label(), got, err, st.Scale)
		}
	}
}

// TestScaleFlags: --step, --from, --to and --require take herd's own
// spelling of a refined step.
func TestScaleFlags(t *testing.T) {
	cmd := newRampCmd(IO{})
	if err := cmd.ParseFlags([]string{"--step", "~2.125x", "--from", "150%", "--to", "~4x", "--require", "2x"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"step": "2.125x", "from": "1.5x", "to": "4x", "require": "2x"} {
		if got := cmd.Flags().Lookup(name).Value.String(); got != want {
			t.Errorf("--%s: got %s, want %s", name, got, want)
		}
	}
}
