package fields

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// mark is a rule that replaces the named fields (case-insensitively) with
// <name=value>, so a test sees which name and value each replacement got.
func mark(subtree bool, names ...string) Rule {
	return Rule{
		Match: func(n string) bool {
			for _, x := range names {
				if strings.EqualFold(x, n) {
					return true
				}
			}
			return false
		},
		Replace: func(n, v string) (string, bool) { return "<" + n + "=" + v + ">", true },
		Subtree: subtree,
	}
}

func TestPairs(t *testing.T) {
	r := mark(false, "token", "api key")
	cases := []struct{ in, want string }{
		{"a=1&token=s3cret&b=2", "a=1&token=%3Ctoken%3Ds3cret%3E&b=2"},
		{"TOKEN=x", "TOKEN=%3CTOKEN%3Dx%3E"},
		{"to%6Ben=a%2Bb", "to%6Ben=%3Ctoken%3Da%2Bb%3E"}, // names and values decoded for the rule
		{"api+key=k", "api+key=%3Capi%20key%3Dk%3E"},
		{"token&token=&x", "token&token=%3Ctoken%3D%3E&x"}, // a name without '=' has no value
		{"a=1&b=2", "a=1&b=2"},
		{"token=1&&token=2&", "token=%3Ctoken%3D1%3E&&token=%3Ctoken%3D2%3E&"},
		{"token=%zz", "token=%3Ctoken%3D%25zz%3E"}, // undecodable: the rule sees it as it is
	}
	for _, c := range cases {
		got, n := Pairs(c.in, r)
		if got != c.want || (n > 0) != (got != c.in) {
			t.Errorf("Pairs(%q) = %q, %d; want %q", c.in, got, n, c.want)
		}
	}
}

func TestTargetAndURL(t *testing.T) {
	r := Rule{
		Match:   func(n string) bool { return n == "token" || n == "access_token" },
		Replace: func(n, v string) (string, bool) { return "herd-redacted:L8:0011223344556677", true },
	}
	const m = "herd-redacted:L8:0011223344556677"
	cases := []struct {
		in, want string
		url      bool
	}{
		{"/a?token=x&page=2", "/a?token=" + m + "&page=2", false},
		{"/a", "/a", false},
		{"/a?page=2", "/a?page=2", false},
		{"http://h:80/a?token=x", "http://h:80/a?token=" + m, false},
		{"/a?token=x#token=y", "/a?token=" + m + "#token=y", false}, // a target's fragment is not a query
		{"https://app/cb#access_token=x&state=s", "https://app/cb#access_token=" + m + "&state=s", true},
		{"https://app/cb?token=a#access_token=b", "https://app/cb?token=" + m + "#access_token=" + m, true},
		{"https://app/docs#section-2", "https://app/docs#section-2", true},
	}
	for _, c := range cases {
		var got string
		if c.url {
			got, _ = URL(c.in, r)
		} else {
			got, _ = Target(c.in, r)
		}
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestJSON(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		rule    Rule
		trunc   bool
		want    string
		wantErr bool
	}{
		{name: "flat", rule: mark(false, "password"),
			in:   `{"user":"u1","password":"hunter2"}`,
			want: `{"user":"u1","password":"<password=hunter2>"}`},
		{name: "bytes outside values kept", rule: mark(false, "password"),
			in:   "{ \"user\" : \"u1\" ,\n\t\"password\"  :  \"p\"  }  ",
			want: "{ \"user\" : \"u1\" ,\n\t\"password\"  :  \"<password=p>\"  }  "},
		{name: "nested and arrays", rule: mark(false, "token"),
			in:   `{"a":{"b":[{"token":"t1"},{"token":"t2","x":1}]},"token":["t3","t4"]}`,
			want: `{"a":{"b":[{"token":"<token=t1>"},{"token":"<token=t2>","x":1}]},"token":["<token=t3>","<token=t4>"]}`},
		{name: "numbers become strings, literals stay", rule: mark(false, "pin", "ok", "none"),
			in:   `{"pin":-12.5e3,"ok":true,"none":null}`,
			want: `{"pin":"<pin=-12.5e3>","ok":true,"none":null}`},
		{name: "escaped key and value", rule: mark(false, "password"),
			in:   `{"pass\u0077ord":"a\"b\\c\u00e9"}`,
			want: `{"pass\u0077ord":"<password=a\"b\\cé>"}`},
		{name: "without subtree a matched object is walked by its own names", rule: mark(false, "credentials", "secret"),
			in:   `{"credentials":{"user":"u","secret":"s"}}`,
			want: `{"credentials":{"user":"u","secret":"<secret=s>"}}`},
		{name: "subtree", rule: mark(true, "credentials"),
			in:   `{"credentials":{"user":"u","pw":["a",{"x":2}],"on":false},"after":"kept"}`,
			want: `{"credentials":{"user":"<credentials=u>","pw":["<credentials=a>",{"x":"<credentials=2>"}],"on":false},"after":"kept"}`},
		{name: "subtree ends with its container", rule: mark(true, "s"),
			in:   `[{"s":[1,[2]],"t":3},{"t":4,"s":5}]`,
			want: `[{"s":["<s=1>",["<s=2>"]],"t":3},{"t":4,"s":"<s=5>"}]`},
		{name: "array element after a nested object keeps the member's name", rule: mark(false, "k"),
			in:   `{"k":[{"a":1},"x"]}`,
			want: `{"k":[{"a":1},"<k=x>"]}`},
		{name: "top-level scalars have no name", rule: mark(true, ""),
			in: `"x"`, want: `"x"`},
		{name: "NDJSON", rule: mark(false, "token"),
			in:   "{\"token\":\"a\"}\n{\"token\":\"b\"}\n",
			want: "{\"token\":\"<token=a>\"}\n{\"token\":\"<token=b>\"}\n"},
		{name: "replacement escaped", rule: Rule{Match: func(string) bool { return true }, Replace: func(string, string) (string, bool) { return "q\"\\\n\xff", true }},
			in: `{"a":"b"}`, want: `{"a":"q\"\\\u000a\ufffd"}`},
		{name: "invalid: left alone", rule: mark(false, "password"),
			in: `{"password":"p",}`, want: `{"password":"p",}`, wantErr: true},
		{name: "invalid: bare word", rule: mark(false, "password"),
			in: `{password: "p"}`, want: `{password: "p"}`, wantErr: true},
		{name: "invalid: control character", rule: mark(false, "password"),
			in: "{\"password\":\"p\x01\"}", want: "{\"password\":\"p\x01\"}", wantErr: true},
		{name: "invalid: leading zero inside", rule: mark(false, "pin"),
			in: `{"pin":012}`, want: `{"pin":012}`, wantErr: true},
		{name: "cut, not truncated: left alone", rule: mark(false, "password"),
			in: `{"password":"hun`, want: `{"password":"hun`, wantErr: true},
		{name: "truncated in a matched string", rule: mark(false, "password"), trunc: true,
			in: `{"a":"b","password":"hun`, want: `{"a":"b","password":"<password=hun>"`},
		{name: "truncated after a matched number", rule: mark(false, "pin"), trunc: true,
			in: `{"pin":12`, want: `{"pin":"<pin=12>"`},
		{name: "truncated in a subtree", rule: mark(true, "credentials"), trunc: true,
			in: `{"credentials":{"u":"a","p":"b`, want: `{"credentials":{"u":"<credentials=a>","p":"<credentials=b>"`},
		{name: "truncated in a key", rule: mark(false, "password"), trunc: true,
			in: `{"token":"t","passw`, want: `{"token":"t","passw`},
		{name: "truncated but broken before the cut", rule: mark(false, "password"), trunc: true,
			in: `{"password":"p"]`, want: `{"password":"p"]`, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, n, err := JSONBody([]byte(c.in), c.trunc, c.rule)
			var se *SyntaxError
			if c.wantErr != errors.As(err, &se) {
				t.Fatalf("error %v, want one: %v", err, c.wantErr)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if (n > 0) != (string(got) != c.in) {
				t.Errorf("%d replacements for a body that changed: %v", n, string(got) != c.in)
			}
			if json.Valid([]byte(c.in)) && !json.Valid(got) {
				t.Errorf("valid JSON became invalid: %s", got)
			}
		})
	}
}

// TestJSONDeep: nesting costs no stack; a million levels walk fine.
func TestJSONDeep(t *testing.T) {
	const depth = 1 << 20
	in := strings.Repeat(`{"a":[`, depth) + `"x"` + strings.Repeat(`]}`, depth)
	got, n, err := JSONBody([]byte(in), false, mark(false, "a"))
	if err != nil || n != 1 || !strings.Contains(string(got), `["<a=x>"]`) {
		t.Fatalf("n %d, err %v", n, err)
	}
}

func TestMultipart(t *testing.T) {
	const b = "XyZ"
	body := "preamble\r\n--XyZ\r\n" +
		"Content-Disposition: form-data; name=\"user\"\r\n\r\nu1\r\n--XyZ\r\n" +
		"Content-Disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n--XyZ\r\n" +
		"Content-Disposition: form-data; name=\"password\"; filename=\"password.txt\"\r\nContent-Type: text/plain\r\n\r\nfile bytes\r\n--XyZ\r\n" +
		"content-disposition: form-data; name=token\n\ntok\n--XyZ--\r\nepilogue"
	want := strings.Replace(body, "\r\n\r\nhunter2\r\n", "\r\n\r\n<password=hunter2>\r\n", 1)
	want = strings.Replace(want, "\n\ntok\n", "\n\n<token=tok>\n", 1)
	got, n, err := MultipartBody([]byte(body), b, false, mark(false, "password", "token"))
	if err != nil || n != 2 || string(got) != want {
		t.Errorf("got %d, %v\n%q\nwant\n%q", n, err, got, want)
	}
	// Cut in the middle of a matched part.
	cut := body[:strings.Index(body, "hunter2")+3]
	got, n, err = MultipartBody([]byte(cut), b, true, mark(false, "password"))
	if err != nil || n != 1 || !strings.HasSuffix(string(got), "\r\n\r\n<password=hun>") {
		t.Errorf("truncated: %d, %v, %q", n, err, got)
	}
	if _, _, err := MultipartBody([]byte(cut), b, false, mark(false, "password")); err == nil {
		t.Error("an unterminated part, not truncated, was accepted")
	}
	if _, _, err := MultipartBody([]byte("no delimiter here"), b, false, mark(false, "password")); err == nil {
		t.Error("a body without a delimiter was accepted")
	}
	// A replacement holding the delimiter is not written.
	r := Rule{Match: func(string) bool { return true }, Replace: func(string, string) (string, bool) { return "x\r\n--XyZ--", true }}
	if got, n, _ := MultipartBody([]byte(body), b, false, r); n != 0 || string(got) != body {
		t.Errorf("a delimiter in a replacement: %d replacements", n)
	}
}

func TestBodyDetect(t *testing.T) {
	r := mark(false, "password")
	cases := []struct {
		ct, ce, body, want string
		err                error
	}{
		{"application/x-www-form-urlencoded", "", "user=u&password=p", "user=u&password=%3Cpassword%3Dp%3E", nil},
		{"application/json; charset=utf-8", "", `{"password":"p"}`, `{"password":"<password=p>"}`, nil},
		{"application/vnd.api+json", "", `{"password":"p"}`, `{"password":"<password=p>"}`, nil},
		{"", "", ` [{"password":"p"}]`, ` [{"password":"<password=p>"}]`, nil}, // looks like JSON
		{"text/plain", "", `{"password":"p"}`, `{"password":"<password=p>"}`, nil},
		{"text/plain", "", `password=p`, `password=p`, nil}, // a form only when it says so
		{"application/json", "gzip", `{"password":"p"}`, `{"password":"p"}`, ErrEncoded},
		{"application/json", "identity", `{"password":"p"}`, `{"password":"<password=p>"}`, nil},
		{"multipart/mixed; boundary=x", "", `{"password":"p"}`, `{"password":"p"}`, nil},
		{"multipart/form-data; boundary=x", "", "--x\r\nContent-Disposition: form-data; name=password\r\n\r\np\r\n--x--", "--x\r\nContent-Disposition: form-data; name=password\r\n\r\n<password=p>\r\n--x--", nil},
	}
	for _, c := range cases {
		got, _, err := Body([]byte(c.body), c.ct, c.ce, false, r)
		if string(got) != c.want || !errors.Is(err, c.err) {
			t.Errorf("%s %s %q: got %q, %v; want %q, %v", c.ct, c.ce, c.body, got, err, c.want, c.err)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"herd-redacted:L16:0123456789abcdef": "herd-redacted:L16:0123456789abcdef",
		"a b&c=d+e#f%g":                      "a%20b%26c%3Dd%2Be%23f%25g",
		"é":                                  "%C3%A9",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}
