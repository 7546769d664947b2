package textfmt

import (
	"math"
	"strconv"
	"time"
)

// Duration writes d for people, the one way herd writes a duration in
// text: three significant digits in the unit its magnitude calls for
// (950µs, 12.3ms, 1.50s), minutes and seconds from a minute (2m05s),
// hours and minutes from an hour (1h02m), days and hours from a day
// (503d4h). A whole number of its unit is
// written without decimals (5s, 87ms, not 5.00s), as people type the
// bounds and settings it also writes. A value that rounds up to the next
// unit is written in it: 999.7ms is 1s, 59.96s is 1m00s.
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		if d == math.MinInt64 {
			d++
		}
		return "-" + Duration(-d)
	case d == 0:
		return "0s"
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	}
	ns := float64(d)
	for _, u := range [...]struct {
		size float64
		name string
		next float64 // the value in this unit that is written in the next
	}{{1e3, "µs", 1000}, {1e6, "ms", 1000}, {1e9, "s", 60}} {
		if v := round3(ns / u.size); v < u.next {
			return sig3(v) + u.name
		}
	}
	if s := int64(math.Round(ns / 1e9)); s < 3600 {
		return strconv.FormatInt(s/60, 10) + "m" + pad2(s%60) + "s"
	}
	if m := int64(math.Round(ns / 6e10)); m < 24*60 {
		return strconv.FormatInt(m/60, 10) + "h" + pad2(m%60) + "m"
	}
	h := int64(math.Round(ns / 3.6e12))
	return strconv.FormatInt(h/24, 10) + "d" + strconv.FormatInt(h%24, 10) + "h"
}

// Millis is Duration for a figure in milliseconds, as results files keep
// latencies; a value that is not a number is "n/a".
func Millis(ms float64) string {
	if math.IsNaN(ms) || math.IsInf(ms, 0) {
		return "n/a"
	}
	return Duration(time.Duration(math.Round(ms * 1e6)))
}

// Seconds is Duration for a figure in seconds.
func Seconds(s float64) string {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return "n/a"
	}
	return Duration(time.Duration(math.Round(s * 1e9)))
}

// Rate writes a rate per second to three significant digits, with k and
// M for thousands and millions: 0.50/s, 12.3/s, 186/s, 1234/s, 12.3k/s.
func Rate(perSecond float64) string {
	v := perSecond
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case v < 0:
		return "-" + Rate(-v)
	case v == 0:
		return "0/s"
	}
	v = round3(v)
	switch {
	case v >= 1e6:
		return sig3(round3(v/1e6)) + "M/s"
	case v >= 1e4:
		return sig3(round3(v/1e3)) + "k/s"
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64) + "/s"
	}
	return sig3(v) + "/s"
}

// round3 rounds v > 0 to three significant digits.
func round3(v float64) float64 {
	if v <= 0 {
		return v
	}
	e := math.Pow(10, 2-math.Floor(math.Log10(v)))
	return math.Round(v*e) / e
}

// sig3 writes v (already rounded by round3, below 1000) with the decimals
// that make three significant digits (9.50, 12.3, 123), none for a whole
// number (5, 87).
func sig3(v float64) string {
	decimals := 0
	switch {
	case v == math.Trunc(v):
	case v < 10:
		decimals = 2
	case v < 100:
		decimals = 1
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}
