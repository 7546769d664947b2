// Package cputime reads the CPU time this process has used, user and
// system, for the cores a replay step or a capture used. It does nothing
// else.
package cputime
