package route

import "testing"

func TestTemplate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"/users/123", "/users/:id"},
		{"/users/123/orders/9", "/users/:id/orders/:id"},
		{"/items/3f2c1a9e-7b1d-4c2a-9e8f-0123456789ab?x=1", "/items/:id"},
		{"/blobs/deadbeefdeadbeef00", "/blobs/:id"},
		{"/blobs/deadbeef", "/blobs/deadbeef"}, // short hex is a word, not an id
		{"/v2/api", "/v2/api"},
		{"/search?q=123", "/search"},
		{"/a/b#frag", "/a/b"},
		{"http://example.com/users/42", "/users/:id"},
		{"http://example.com", "/"},
		{"/users/123/", "/users/:id/"},
		{"//double//7", "//double//:id"},
		{"*", "*"},
		{"/static/app.js", "/static/app.js"},
	}
	for _, c := range cases {
		if got := Template(c.in); got != c.want {
			t.Errorf("Template(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func BenchmarkTemplate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Template("/api/items/3f2c1a9e-7b1d-4c2a-9e8f-0123456789ab?x=1")
		Template("/static/app.css")
	}
}
