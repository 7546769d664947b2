package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/herd-replay/herd/tape"
)

var fuzzTypes = []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz", "text/plain"}

// FuzzBody redacts arbitrary bodies under each content type: it never
// panics, a valid JSON body stays valid JSON, no value under a secret name
// survives in a JSON or form body, and a second pass changes nothing.
func FuzzBody(f *testing.F) {
	seeds := []string{
		`{"user":"u1","password":"p","nested":{"client_secret":"s","list":[{"api_key":"k"}]},"credentials":{"pin":4242},"max_tokens":100}`,
		`[{"token":["a","b"]},{"session":{"id":1.5e3,"ok":true,"x":null}}]`,
		`{"pass\u0077ord":"x","a":"\"\\"}`,
		"{\"token\":\"a\"}\n{\"token\":\"b\"}",
		`{"password":"cut`, `{"password":"p",}`, `not json`,
		"user=u&password=p&client_secret=s&x=%zz&api+key=k&&token",
		"--zz\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\np\r\n--zz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nfile\r\n--zz--",
	}
	for i, s := range seeds {
		f.Add(uint8(i%len(fuzzTypes)), []byte(s), false)
		f.Add(uint8(0), []byte(s), true)
		f.Add(uint8(1), []byte(s), false)
	}
	r, err := New(Options{Key: []byte("fuzz")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte, truncated bool) {
		ct := fuzzTypes[int(kind)%len(fuzzTypes)]
		e := &tape.Exchange{Method: "POST", Target: "/", ReqHeader: []tape.Field{{Name: "Content-Type", Value: ct}},
			ReqBody: bytes.Clone(body), ReqBodyLen: int64(len(body))}
		if truncated {
			e.Flags |= tape.ReqBodyTruncated
			e.ReqBodyLen += 10
		}
		r.Exchange(e)
		out := e.ReqBody
		missing := int64(0)
		if truncated {
			missing = 10
		}
		if e.ReqBodyLen-int64(len(out)) != missing {
			t.Fatalf("ReqBodyLen %d for a body of %d", e.ReqBodyLen, len(out))
		}
		if ct == "application/json" && json.Valid(body) {
			if !json.Valid(out) {
				t.Fatalf("valid JSON became invalid:\n%s\n%s", body, out)
			}
			var v any
			d := json.NewDecoder(bytes.NewReader(out))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				t.Fatal(err)
			}
			checkJSON(t, r, v, false)
		}
		if ct == "application/x-www-form-urlencoded" {
			for _, p := range strings.Split(string(out), "&") {
				name, value, ok := strings.Cut(p, "=")
				if !ok {
					continue
				}
				if n, err := url.QueryUnescape(name); err == nil {
					name = n
				}
				if v, err := url.QueryUnescape(value); err == nil {
					value = v
				}
				if value != "" && r.secret('b', name) && !IsMarker(value) {
					t.Fatalf("form field %q kept %q", name, value)
				}
			}
		}
		again := bytes.Clone(out)
		e.ReqBody = again
		if r.Exchange(e) || !bytes.Equal(e.ReqBody, out) {
			t.Fatalf("a second pass changed the body:\n%q\n%q", out, e.ReqBody)
		}
	})
}

// checkJSON fails on a string or number left under a secret member name.
func checkJSON(t *testing.T, r *Redactor, v any, under bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			checkJSON(t, r, c, under || r.secret('b', k))
		}
	case []any:
		for _, c := range x {
			checkJSON(t, r, c, under)
		}
	case string:
		if under && x != "" && !IsMarker(x) {
			t.Fatalf("a secret string survived: %q", x)
		}
	case json.Number:
		if under {
			t.Fatalf("a secret number survived: %v", x)
		}
	}
}
