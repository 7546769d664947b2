// Package demo holds herd's built-in example: synthetic production-like
// traffic (keep-alive sessions with think times over a day with a peak) and
// the route table it shares with the demo service. It writes tapes through
// package tape and knows nothing of the CLI.
package demo
