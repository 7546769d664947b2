package capture

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDebugDump(t *testing.T) {
	p := os.Getenv("DUMP")
	if p == "" {
		t.Skip()
	}
	ex, st := captureFile(t, p, Options{})
	for _, e := range ex {
		fmt.Printf("%d\t%s\t%s\t%d\t%s %s\t%d\t%v\n", e.ConnID, e.Client, e.Server, e.Seq, e.Method, e.Target, e.Status, e.Flags)
	}
	fmt.Printf("%+v\n", st)
}

func TestDebugAll(t *testing.T) {
	if os.Getenv("DUMPALL") == "" {
		t.Skip()
	}
	dir := sharedPcaps(t)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.Contains(e.Name(), ".pcap") {
			continue
		}
		_, st := captureFile(t, filepath.Join(dir, e.Name()), Options{})
		fmt.Printf("%s\n  %v\n  %v\n", e.Name(), st.Tape().Counters, st.Tape().Discarded)
	}
}
