package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseScale reads a multiple of the recorded rate as people type it and
// as herd prints it: 3, 3x, 2.5x, 300%, and the ~3.125x of a refined step
// or the 3x (again) of a step run again, copied from herd's own output.
func parseScale(s string) (float64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	t = strings.TrimSpace(strings.TrimSuffix(t, "(again)"))
	t = strings.TrimSpace(strings.TrimPrefix(t, "~"))
	div := 1.0
	switch {
	case strings.HasSuffix(t, "%"):
		t, div = strings.TrimSuffix(t, "%"), 100
	case strings.HasSuffix(t, "x"):
		t = strings.TrimSuffix(t, "x")
	case strings.HasSuffix(t, "×"):
		t = strings.TrimSuffix(t, "×")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("multiple %q: use a positive number such as 3, 3x, 2.5x, ~3.125x or 300%%", s)
	}
	return v / div, nil
}

// scaleValue is a pflag.Value for multiples.
type scaleValue struct{ v *float64 }

func (s scaleValue) String() string {
	if s.v == nil || *s.v == 0 {
		return ""
	}
	return strconv.FormatFloat(*s.v, 'g', -1, 64) + "x"
}

func (s scaleValue) Set(v string) error {
	f, err := parseScale(v)
	if err != nil {
		return err
	}
	*s.v = f
	return nil
}

func (s scaleValue) Type() string { return "multiple" }
