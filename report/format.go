package report

import (
	"fmt"
	"io"

	"github.com/herd-replay/herd/internal/results"
)

// Formats are the names Write accepts, the default first.
var Formats = []string{"text", "json", "html", "hgrm", "csv", "openmetrics"}

// Write renders f in the named format.
func Write(w io.Writer, f *results.File, format string) error {
	switch format {
	case "text":
		return WriteText(w, f)
	case "json":
		return WriteJSON(w, f)
	case "html":
		return WriteHTML(w, f)
	case "hgrm":
		return WriteHgrm(w, f)
	case "csv":
		return WriteCSV(w, f)
	case "openmetrics":
		return WriteOpenMetrics(w, f)
	}
	return fmt.Errorf("unknown report format %q (one of %v)", format, Formats)
}

// WriteJSON writes f as the results file itself (indented JSON, schema 1).
func WriteJSON(w io.Writer, f *results.File) error { return f.Write(w) }
