// Package route turns request targets into route templates, so that
// /users/123 and /users/456 are counted, replayed and reported as one
// endpoint, /users/:id. It is the one definition shared by inspect, replay
// and the reports.
package route

import "strings"

// Template returns the path of target with identifier segments replaced by
// ":id": all-digit segments, UUIDs, and hexadecimal strings of 16 or more
// characters. The query string and fragment are dropped; an absolute-form
// target ("http://host/path") is reduced to its path.
func Template(target string) string {
	if i := strings.Index(target, "://"); i >= 0 && i < 10 {
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			target = rest[j:]
		} else {
			target = "/"
		}
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if target == "" {
		return "/"
	}
	if !strings.ContainsAny(target, "0123456789") {
		return target // nothing to template: the common static case allocates nothing
	}
	var b strings.Builder
	b.Grow(len(target))
	for i := 0; i < len(target); {
		j := strings.IndexByte(target[i:], '/')
		var seg string
		if j < 0 {
			seg, j = target[i:], len(target)
		} else {
			seg, j = target[i:i+j], i+j
		}
		if isID(seg) {
			b.WriteString(":id")
		} else {
			b.WriteString(seg)
		}
		if j < len(target) {
			b.WriteByte('/')
		}
		i = j + 1
	}
	return b.String()
}

func isID(s string) bool {
	if s == "" {
		return false
	}
	digits, hex := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			digits = false
		default:
			digits, hex = false, false
		}
	}
	return digits || (hex && len(s) >= 16) || isUUID(s)
}

// isUUID matches the 8-4-4-4-12 hexadecimal form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
