// Package textfmt lays out text for terminals and CI logs: aligned tables,
// and the one way herd writes durations and rates for people.
package textfmt

import "strings"

// Table renders rows as aligned columns, two spaces apart. Columns listed
// in Right are right-aligned (numbers); an all-empty row is a blank line.
type Table struct {
	Rows  [][]string
	Right map[int]bool
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

func (t *Table) String() string {
	var widths []int
	for _, r := range t.Rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, r := range t.Rows {
		if strings.Join(r, "") == "" {
			b.WriteString("\n")
			continue
		}
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			switch {
			case t.Right[i]:
				b.WriteString(pad + c)
			case i == len(r)-1:
				b.WriteString(c)
			default:
				b.WriteString(c + pad)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
