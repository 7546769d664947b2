package results

import "testing"

func TestBlameRoute(t *testing.T) {
	p99, _ := ParseSLO("p99<500ms")
	errs, _ := ParseSLO("errors<1%")
	ms := func(fast, slow int64) map[float64]int64 { return map[float64]int64{20: fast, 900: slow} }
	stepOf := func(routes ...Route) *Step { return &Step{Routes: routes} }
	tests := []struct {
		name       string
		fail, pass *Step
		slo        SLO
		want       string
	}{
		{"a shared pool: every route slowed alike",
			stepOf(routeOf("/a", 400, 0, ms(300, 100)), routeOf("/b", 400, 0, ms(290, 110)), routeOf("/login", 200, 0, ms(150, 50))),
			stepOf(routeOf("/a", 300, 0, ms(300, 0)), routeOf("/b", 300, 0, ms(300, 0)), routeOf("/login", 150, 0, ms(150, 0))),
			p99, ""},
		{"one route's lock: only it slowed",
			stepOf(routeOf("/a", 400, 0, ms(396, 4)), routeOf("/b", 400, 0, ms(398, 2)), routeOf("/login", 200, 0, ms(120, 80))),
			stepOf(routeOf("/a", 300, 0, ms(300, 0)), routeOf("/b", 300, 0, ms(300, 0)), routeOf("/login", 150, 0, ms(149, 1))),
			p99, "/login"},
		{"a route slow at the passing step already is not what broke",
			stepOf(routeOf("/a", 400, 0, ms(300, 100)), routeOf("/export", 1000, 0, ms(500, 500))),
			stepOf(routeOf("/a", 300, 0, ms(300, 0)), routeOf("/export", 1000, 0, ms(500, 500))),
			p99, "/a"},
		{"errors on one route",
			stepOf(routeOf("/a", 500, 2, ms(500, 0)), routeOf("/pay", 200, 60, ms(200, 0))),
			stepOf(routeOf("/a", 400, 0, ms(400, 0)), routeOf("/pay", 150, 1, ms(150, 0))),
			errs, "/pay"},
		{"too few requests to judge",
			stepOf(routeOf("/a", 10, 0, ms(0, 10)), routeOf("/b", 10, 0, ms(10, 0))),
			nil, p99, ""},
		{"no passing step: against nothing",
			stepOf(routeOf("/a", 200, 0, ms(200, 0)), routeOf("/slow", 100, 0, ms(60, 40))),
			nil, p99, "/slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := BlameRoute(tt.fail, tt.pass, tt.slo)
			if b.Route != tt.want || b.Reason == "" {
				t.Fatalf("blamed %q (%s), want %q", b.Route, b.Reason, tt.want)
			}
		})
	}
}

func TestWilson(t *testing.T) {
	for _, tt := range []struct {
		k, n   int64
		lo, hi float64
	}{
		{0, 100, 0, 0.037},
		{50, 100, 0.404, 0.596},
		{100, 100, 0.963, 1},
	} {
		lo, hi := wilson(tt.k, tt.n)
		if abs(lo-tt.lo) > 0.002 || abs(hi-tt.hi) > 0.002 {
			t.Errorf("wilson(%d, %d) = %.3f..%.3f, want %.3f..%.3f", tt.k, tt.n, lo, hi, tt.lo, tt.hi)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
