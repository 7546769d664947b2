package textfmt

import (
	"math"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{500, "500ns"},
		{time.Microsecond, "1µs"},
		{9500 * time.Nanosecond, "9.50µs"},
		{950 * time.Microsecond, "950µs"},
		{999600 * time.Nanosecond, "1ms"}, // rounds up into the next unit
		{1234567 * time.Nanosecond, "1.23ms"},
		{12345 * time.Microsecond, "12.3ms"},
		{87 * time.Millisecond, "87ms"}, // whole: no decimals
		{87100 * time.Microsecond, "87.1ms"},
		{10 * time.Second, "10s"},
		{123456 * time.Microsecond, "123ms"},
		{999700 * time.Microsecond, "1s"},
		{1499100 * time.Microsecond, "1.50s"}, // the 1.4991s
		{2275300 * time.Microsecond, "2.28s"}, // and its 2275.3 ms
		{12340 * time.Millisecond, "12.3s"},
		{59960 * time.Millisecond, "1m00s"},
		{125 * time.Second, "2m05s"},
		{59*time.Minute + 59*time.Second + 600*time.Millisecond, "1h00m"},
		{62 * time.Minute, "1h02m"},
		{23*time.Hour + 59*time.Minute + 50*time.Second, "1d0h"},
		{503*24*time.Hour + 4*time.Hour + 10*time.Minute, "503d4h"},
		{-1500 * time.Millisecond, "-1.50s"},
	} {
		if got := Duration(c.d); got != c.want {
			t.Errorf("Duration(%d): got %q, want %q", int64(c.d), got, c.want)
		}
	}
	if got := Duration(math.MinInt64); got == "" || got[0] != '-' {
		t.Errorf("Duration(MinInt64): got %q", got)
	}
}

func TestMillisSeconds(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{Millis(2275.3), "2.28s"},
		{Millis(0.95), "950µs"},
		{Millis(1000), "1s"},
		{Millis(math.NaN()), "n/a"},
		{Seconds(5), "5s"},
		{Seconds(90), "1m30s"},
		{Seconds(0.25), "250ms"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestRate(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0, "0/s"},
		{0.5, "0.50/s"},
		{12.34, "12.3/s"},
		{186.4, "186/s"},
		{999.6, "1000/s"},
		{1234, "1230/s"},
		{12345, "12.3k/s"},
		{2.5e6, "2.50M/s"}, {3, "3/s"}, {40, "40/s"},
		{math.Inf(1), "n/a"},
	} {
		if got := Rate(c.v); got != c.want {
			t.Errorf("Rate(%v): got %q, want %q", c.v, got, c.want)
		}
	}
}
