package fields

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// everything replaces every string and number with a marker.
var everything = Rule{
	Match:   func(string) bool { return true },
	Replace: func(n, v string) (string, bool) { return "herd-redacted:L8:0011223344556677", true },
	Subtree: true,
}

// FuzzJSON: the walker never panics, accepts every valid JSON document,
// keeps it valid, and with a rule that matches nothing returns it as it
// was; a truncated walk of a prefix never fails on the cut alone.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":"b","password":"p","n":[1,2,{"token":"t"}]}`,
		`[{"s":[1,[2]],"t":3},{"t":4,"s":5}]`,
		`{"pass\u0077ord":"a\"b\\c\u00e9","x":-1.5e+3,"y":true,"z":null}`,
		"{\"token\":\"a\"}\n{\"token\":\"b\"}\n",
		`{"a":{"b":{"c":{"d":[[[["deep"]]]]}}}}`,
		`{"a":"b",}`, `{a:1}`, `"\ud800"`, `0123`, `[1e]`, ``, `  `,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, truncated bool) {
		out, n, err := JSONBody(in, truncated, everything)
		valid := json.Valid(in)
		if valid && (err != nil || !json.Valid(out)) {
			t.Fatalf("valid input %q: err %v, output %q valid %v", in, err, out, json.Valid(out))
		}
		if err != nil && (n != 0 || !bytes.Equal(out, in)) {
			t.Fatalf("an error with %d replacements, or a changed body", n)
		}
		if n > 0 && !bytes.Contains(out, []byte("herd-redacted:")) {
			t.Fatalf("%d replacements and no marker: %q", n, out)
		}
		// Redacting the output again finds only markers, already there.
		if valid {
			again, _, err := JSONBody(out, false, everything)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("not a fixed point: %q then %q (%v)", out, again, err)
			}
		}
		none := Rule{Match: func(string) bool { return false }, Replace: everything.Replace}
		if same, m, _ := JSONBody(in, truncated, none); m != 0 || !bytes.Equal(same, in) {
			t.Fatalf("a rule matching nothing changed the body")
		}
		if valid && len(in) > 1 {
			if _, _, err := JSONBody(in[:len(in)/2], true, everything); err != nil && !strings.Contains(err.Error(), "end of the body") && json.Valid(in[:len(in)/2]) {
				t.Fatalf("a valid prefix failed: %v", err)
			}
		}
	})
}

// FuzzMultipart: never panics; a failure leaves the body as it was.
func FuzzMultipart(f *testing.F) {
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\np\r\n--b--"), "b", false)
	f.Add([]byte("x\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nfile\r\n--b\ncontent-disposition: form-data; name=t\n\nv\n--b--"), "b", true)
	f.Add([]byte("--b\r\n\r\n"), "b", false)
	f.Fuzz(func(t *testing.T, in []byte, boundary string, truncated bool) {
		out, n, err := MultipartBody(in, boundary, truncated, everything)
		if err != nil && (n != 0 || !bytes.Equal(out, in)) {
			t.Fatalf("an error with %d replacements, or a changed body", n)
		}
	})
}
