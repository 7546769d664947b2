// Package importer turns traffic recorded by other tools into tape
// exchanges: GoReplay .gor files, HAR 1.2 exports (browsers, proxies,
// Playwright) and access logs (nginx and Apache combined, AWS ALB). The
// format of each input is read from its content, never from its name, and
// gzip-compressed inputs are read transparently.
//
// Every importer streams: it holds one entry at a time plus bounded
// pairing state, so a file of any size imports in bounded memory. Nothing
// is dropped silently: every entry that does not become an exchange is
// counted in Stats by reason, and what the format cannot say (connection
// structure, request bodies) is said in the tape's notes and metadata.
//
// The package knows nothing of the command line, replay or reports: it
// takes a context, Options, the inputs and a Sink (a *tape.Writer), and
// returns Stats and an error.
package importer
