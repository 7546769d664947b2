package tape

// Sink receives exchanges as a recorder settles them: a *Writer, or a
// rotation of writers. The exchange is only valid during the call.
type Sink interface {
	Write(e *Exchange) error
}

// StatsSink is a Sink that wants the recorder's running counters, e.g. to
// store each rotated file's share of them. A recorder calls BindStats once
// before the first Write; the function it hands over may be called from
// Write.
type StatsSink interface {
	Sink
	BindStats(func() Stats)
}
