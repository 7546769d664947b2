package units

import "testing"

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1 << 20}, {"1MiB", 1 << 20}, {"1M", 1 << 20}, {"500MB", 500e6}, {"2GiB", 2 << 30},
		{"64k", 64 << 10}, {"1.5KiB", 1536}, {"0", 0}, {" 10 mb ", 10e6},
	} {
		got, err := ParseBytes(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "MB", "12XB", "-1", "1e30GiB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}
