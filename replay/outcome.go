package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// This file holds herd's rules for what an attempt at a request on a
// connection counts as: its error class, whether it may be resent, whether
// what arrived was a response at all, and the words that say why it
// failed. Every engine applies these functions to what it observed, and
// the aggregator counts their verdicts, so two engines count alike.
// docs/replay.md, "What herd sends and counts under faults", states the
// same rules for users.

// Error classes of a request that got no usable response.
const (
	ClassConnectRefused = "connect_refused"
	ClassConnectTimeout = "connect_timeout"
	ClassConnectError   = "connect_error"
	ClassTLS            = "tls_error"
	ClassReset          = "reset"
	ClassClosed         = "closed" // the target closed the connection before the response was complete
	// ClassIdleClosed: on a reused keep-alive connection, after herd wrote
	// the request, the target closed the connection, or answered 408
	// Request Timeout, before any other response byte: its idle timeout
	// crossed the request. See judge.
	ClassIdleClosed = "idle_closed"
	ClassTimeout    = "timeout"
	ClassMalformed  = "malformed_response"
	ClassHTTP5xx    = "http_5xx"
	ClassFDs        = "fd_exhausted"    // herd ran out of file descriptors
	ClassPorts      = "ports_exhausted" // herd ran out of ephemeral ports
	ClassIO         = "io_error"
)

// generatorClass reports whether a class is herd's own limit, not the
// target's failure.
func generatorClass(c string) bool { return c == ClassFDs || c == ClassPorts }

// attempt is what one try at a request observed on one connection.
type attempt struct {
	reused  bool  // the connection had carried a complete exchange before
	written int   // bytes of the request the connection accepted
	got     bool  // a response byte arrived
	status  int   // status of the final response head, 0 when none was read
	bytes   int64 // response bytes read
	err     error // why the exchange did not complete, nil when it did
}

// verdict is what an attempt counts as.
type verdict struct {
	class    string // error class; "" for a usable response
	response bool   // a response to this request was read: its status and latency count
	resend   bool   // the request may be sent again on a fresh connection
}

// idleTimeoutAnswer reports whether a response head is the target closing
// an idle connection rather than an answer: a 408 read on a reused
// connection. judge explains why; the parser stops reading there.
func idleTimeoutAnswer(reused bool, status int) bool { return reused && status == 408 }

// judge applies herd's rules to an attempt at a request whose request line
// begins wire.
//
// Unsolicited bytes. A connection is checked for bytes (and for its end)
// just before a request is written on it; bytes that arrived with no
// request outstanding are discarded and counted as unsolicited_response,
// the connection is closed, and the request goes on a fresh connection,
// unharmed: nothing of it was written. Bytes that arrive after that check
// cannot be told from a response by their timing. A target closing an
// idle connection writes 408 Request Timeout, or nothing, and closes; on a
// reused connection a 408 or a close before any response byte therefore
// is not an answer to the request but the idle close crossing it (this is
// how net/http's transport reads a 408 on an idle connection). The request
// is an error of class idle_closed; herd wrote it, so the target may have
// read it, and it is not resent. A 408 is never credited as a response on
// a reused connection; on a fresh one, which the target cannot have
// idled, it is an ordinary response.
//
// Resends. A request is sent again only when the connection was reused,
// not one byte of the request was written (the write failed at once: the
// target cannot have seen any of it), and its method is idempotent. At
// most once: the resend goes on a fresh connection, which this rule never
// resends from. Every resend is counted (retried); since the first attempt
// wrote nothing, the target never receives a request twice.
func judge(wire []byte, a attempt) verdict {
	switch {
	case idleTimeoutAnswer(a.reused, a.status):
		return verdict{class: ClassIdleClosed}
	case a.err == nil && a.status >= 500:
		return verdict{class: ClassHTTP5xx, response: true}
	case a.err == nil:
		return verdict{response: true}
	}
	v := verdict{class: ioClass(a.err)}
	if a.reused && !a.got && v.class == ClassClosed {
		v.class = ClassIdleClosed
	}
	v.resend = a.reused && a.written == 0 && idempotent(method(wire))
	return v
}

// method is the method of a request on the wire.
func method(wire []byte) []byte {
	if i := bytes.IndexByte(wire, ' '); i > 0 {
		return wire[:i]
	}
	return nil
}

// idempotent reports whether a method is idempotent (RFC 9110, section
// 9.2.2). A body does not change that: herd resends the recorded body
// byte for byte, and only after an attempt that wrote none of it.
func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

func dialClass(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassConnectRefused
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return ClassFDs
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return ClassPorts
	case isTimeout(err):
		return ClassConnectTimeout
	}
	return ClassConnectError
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func ioClass(err error) string {
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the target. TLS 1.3 refuses a client
		// certificate after the handshake: the alert comes on the first
		// read.
		return ClassTLS
	case errors.Is(err, errMalformed):
		return ClassMalformed
	case isTimeout(err):
		return ClassTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return ClassReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ClassClosed
	}
	return ClassIO
}

// failure is what the aggregator keeps of a failed request to say why it
// failed, should it be the first of its class.
type failure struct {
	err     error
	written bool  // a byte of the request was written
	got     bool  // a response byte arrived
	bytes   int64 // response bytes read
	status  int
}

// describe says, in words, why a request failed with class: the message
// results carry as the first error of the class. It is called once per
// class and step, so it may take its time.
func describe(class string, f failure, timeout time.Duration) string {
	cause := ""
	if f.err != nil {
		cause = f.err.Error()
	}
	switch class {
	case ClassHTTP5xx:
		return fmt.Sprintf("the target answered %d", f.status)
	case ClassClientTimeout:
		if !f.got {
			return fmt.Sprintf("no response byte within the clients' %v timeout: the emulated client gave up and closed the connection", timeout)
		}
		return fmt.Sprintf("response incomplete after the clients' %v timeout (%d bytes read): the emulated client gave up and closed the connection", timeout, f.bytes)
	case ClassTimeout:
		if !f.got {
			return fmt.Sprintf("no response byte within the %v timeout", timeout)
		}
		return fmt.Sprintf("response incomplete after the %v timeout: %d bytes read", timeout, f.bytes)
	case ClassIdleClosed:
		if f.status == 408 {
			return "the target answered 408 Request Timeout on a reused keep-alive connection as the request was sent: it was closing the idle connection, and may have read the request (not resent)"
		}
		return "the target closed a reused keep-alive connection as the request was sent, before any response byte: it may have read the request (not resent)"
	case ClassClosed:
		if !f.got {
			return "the target closed the connection before any response byte"
		}
		return fmt.Sprintf("the target closed the connection after %d response bytes, before the response was complete", f.bytes)
	case ClassReset:
		switch {
		case !f.written:
			return "connection reset before the request was written: " + cause
		case !f.got:
			return "connection reset after the request was written, before any response byte: " + cause
		}
		return fmt.Sprintf("connection reset after %d response bytes: %s", f.bytes, cause)
	case ClassConnectTimeout:
		return "no connection within the timeout: " + cause
	case ClassTLS:
		return "TLS handshake failed: " + cause
	case ClassFDs:
		return "herd ran out of file descriptors (raise ulimit -n): " + cause
	case ClassPorts:
		return "herd ran out of ephemeral ports: " + cause
	}
	if cause == "" {
		return class
	}
	return cause
}
