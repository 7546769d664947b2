package textfmt

import "testing"

func TestTable(t *testing.T) {
	tb := &Table{Right: map[int]bool{1: true}}
	tb.Add("name", "n", "note")
	tb.Add("", "", "")
	tb.Add("longer", "1234", "x")
	want := "name       n  note\n\nlonger  1234  x\n"
	if got := tb.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
