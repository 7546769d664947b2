package fields

import (
	"bytes"
	"mime"
	"strings"
)

// MultipartBody rewrites the simple fields of a multipart/form-data body:
// the parts whose Content-Disposition is form-data with a name and no
// filename, matched by that name; their content is the value. File parts
// and parts of other dispositions are kept as they are, whatever their
// name. A body whose structure breaks (no delimiter, an unterminated part)
// is returned unchanged with a *SyntaxError, unless truncated: then the
// parts before the cut are rewritten, and a matched part cut short too.
func MultipartBody(body []byte, boundary string, truncated bool, r Rule) ([]byte, int, error) {
	if r.Match == nil {
		return body, 0, nil
	}
	if boundary == "" {
		return body, 0, &SyntaxError{Format: "multipart", Msg: "no boundary in the content type"}
	}
	delim := []byte("--" + boundary)
	fail := func(at int, msg string) ([]byte, int, error) {
		return body, 0, &SyntaxError{Format: "multipart", Offset: at, Msg: msg}
	}
	var out []byte
	last, n := 0, 0
	result := func() []byte {
		if n == 0 {
			return body
		}
		return append(out, body[last:]...)
	}
	// The first delimiter starts the body or a line; a preamble before
	// it is ignored.
	pos := -1
	if bytes.HasPrefix(body, delim) {
		pos = 0
	} else if i := bytes.Index(body, append([]byte("\n"), delim...)); i >= 0 {
		pos = i + 1
	}
	if pos < 0 {
		if truncated {
			return body, 0, nil
		}
		return fail(0, "no delimiter")
	}
	next := append([]byte("\n"), delim...) // a delimiter after a part's content
	for {
		pos += len(delim)
		if bytes.HasPrefix(body[pos:], []byte("--")) {
			return result(), n, nil // the close delimiter
		}
		eol := bytes.IndexByte(body[pos:], '\n')
		if eol < 0 {
			if truncated {
				return result(), n, nil
			}
			return fail(pos, "unterminated delimiter line")
		}
		pos += eol + 1
		// Part headers, up to an empty line.
		name, simple := "", false
		for {
			eol := bytes.IndexByte(body[pos:], '\n')
			if eol < 0 {
				if truncated {
					return result(), n, nil
				}
				return fail(pos, "unterminated part headers")
			}
			line := strings.TrimRight(string(body[pos:pos+eol]), "\r")
			pos += eol + 1
			if line == "" {
				break
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "Content-Disposition") {
				continue
			}
			if disp, params, err := mime.ParseMediaType(v); err == nil && disp == "form-data" {
				_, file := params["filename"]
				_, file2 := params["filename*"]
				name, simple = params["name"], !file && !file2 && params["name"] != ""
			}
		}
		// The content runs to the line break before the next delimiter.
		start, end, more := pos, 0, true
		if i := bytes.Index(body[pos:], next); i >= 0 {
			end = pos + i
			pos = end + 1
			if end > start && body[end-1] == '\r' {
				end--
			}
		} else if truncated {
			end, more = len(body), false
		} else {
			return fail(pos, "unterminated part")
		}
		if simple && r.Match(name) {
			// A replacement holding the delimiter would end the part early:
			// such a value is not written.
			if repl, ok := r.Replace(name, string(body[start:end])); ok && !bytes.Contains([]byte(repl), delim) {
				if out == nil {
					out = make([]byte, 0, len(body)+64)
				}
				out = append(out, body[last:start]...)
				out = append(out, repl...)
				last = end
				n++
			}
		}
		if !more {
			return result(), n, nil
		}
	}
}
