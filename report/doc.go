// Package report renders results files (internal/results) for people and
// machines: text tables, JSON, and more. A renderer is a function of the
// results and an io.Writer; nothing here runs traffic or reads tapes.
package report
