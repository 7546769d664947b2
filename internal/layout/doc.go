// Package layout has no code: its test enforces the package dependency
// rules of docs/DESIGN (capture, replay and report never import each other;
// only internal/cli and cmd import cobra and mpb).
package layout
