package replay

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// h2Job is one request of a replayed connection: its due time in, its
// result out.
type h2Job struct {
	r     *Req
	due   int64 // replay clock
	id    reqID
	ready int64 // when it could first be sent: due, or the response it waits for
	sent  int64
	// finished is closed when the job's result has been reported (or it
	// was not sent); doneAt is then its completion time.
	finished chan struct{}
	doneAt   int64
	retries  int
	slotWait int64 // ns spent waiting for a stream slot
	connect  int64 // ns to open the connection it was the first stream of
	closed   bool
	// Client emulation: the attempt this is (from 0), the due time of the
	// request's first attempt, how long the client waits for an answer
	// (0: herd's timeout), and the previous attempt's outcome, which
	// decides the request when a stop cuts its retry off.
	attempt       int32
	logical       int64
	clientTimeout time.Duration
	last          *h2Outcome
}

// limit is how long a stream of j waits for its answer: herd's timeout,
// or the emulated client's when it gives up sooner.
func (j *h2Job) limit(timeout time.Duration) time.Duration {
	if j.clientTimeout > 0 && j.clientTimeout < timeout {
		return j.clientTimeout
	}
	return timeout
}

// h2Outcome is a job's result with what HTTP/2 adds to it: the error
// behind its class, the resends it took, its wait for a stream slot and
// the connection setup it paid for.
type h2Outcome struct {
	res      result
	err      error
	retries  int
	slotWait int64
	connect  int64
	// sentStream: the request went out as a stream (not a failed dial);
	// got: a response byte arrived.
	sentStream, got bool
}

// h2Env is what a session needs from the engine that runs it.
type h2Env struct {
	timeout time.Duration
	pacing  Pacing
	stop    context.Context // cancelled: send nothing more
	dial    context.Context // outlives stop: dials of requests already sent finish
	// sleepUntil waits until a replay-clock time; an error when stopped.
	sleepUntil func(due int64) error
	// acquireInflight and acquireConn wait until a replay-clock deadline
	// for a slot; release... give it back.
	acquireInflight func(deadline int64) bool
	releaseInflight func()
	acquireConn     func(deadline int64) bool
	releaseConn     func()
	// admit asks the rate cap (--max-rate) for a place for an attempt.
	admit  func() bool
	report func(h2Outcome)
	// emu emulates the recorded clients' timeouts and retries (nil: none).
	emu *h2Emulation
}

// h2Emulation is client emulation on HTTP/2, as the HTTP/1.x engines do it:
// a stream the client gave up on is reset (CANCEL), and a failed request
// the retry policy retries is sent again as a new stream after the
// policy's delay, on the same connection while it lasts. Its session
// waits for the request's final outcome, as the recorded client did.
type h2Emulation struct {
	retry         RetryPolicy
	clientTimeout time.Duration
	seed          uint64
	budget        *retryBudget
	sleepUntil    func(int64) error // waits for a retry; an error when stopped
}

// h2Session replays one recorded client connection over HTTP/2: its jobs
// go out in recorded order as streams of one connection (another after a
// GOAWAY or a lost connection), each at its due time.
type h2Session struct {
	cl  *h2Client
	env h2Env

	sendMu sync.Mutex // one stream opened at a time, so ids follow send order
	cn     *h2Conn
	wg     sync.WaitGroup // jobs sent and not finished
}

// run sends the jobs and returns when every one sent has finished.
func (s *h2Session) run(jobs []*h2Job) {
	i := 0
	s.runFrom(func() *h2Job {
		if i == len(jobs) {
			return nil
		}
		i++
		return jobs[i-1]
	})
}

// runFrom sends the jobs next hands out, in order, until it hands out
// nil, and returns when every one sent has finished. A job a stop leaves
// unsent is never taken, and counted as stopped.
func (s *h2Session) runFrom(next func() *h2Job) {
	defer s.close()
	var prev *h2Job
	for j := next(); j != nil; prev, j = j, next() {
		if s.env.sleepUntil(j.due) != nil {
			s.unsent([]*h2Job{j})
			break
		}
		j.ready = j.due
		if s.env.pacing == Session && prev != nil && j.r.H2 != nil && j.r.H2.After {
			// The recorded client waited for the previous response.
			select {
			case <-prev.finished:
			case <-s.env.stop.Done():
				s.unsent([]*h2Job{j})
				return
			}
			j.ready = max(j.ready, prev.doneAt)
		}
		if s.env.emu != nil {
			j.clientTimeout = s.env.emu.clientTimeout
		}
		if nanotime()-j.ready > int64(behindLimit) {
			s.env.report(h2Outcome{res: j.result("", "generator_behind")})
			j.finish(nanotime())
			continue
		}
		s.start(j, false)
	}
	s.wg.Wait()
}

// unsent closes the jobs a stop left unsent: the engine counts them as
// stopped.
func (s *h2Session) unsent(jobs []*h2Job) {
	for _, j := range jobs {
		if !j.closed {
			j.finish(nanotime())
		}
	}
}

func (j *h2Job) finish(at int64) {
	j.doneAt, j.closed = at, true
	close(j.finished)
}

// result starts the job's result.
func (j *h2Job) result(class, notSent string) result {
	res := result{due: j.due, ready: j.ready, sent: j.sent, route: j.r.Route, recorded: int32(j.r.Status),
		vconn: j.id.vconn, req: j.id.req, class: class, notSent: notSent, attempt: j.attempt}
	if j.attempt > 0 {
		res.logical = j.logical
	}
	return res
}

// start sends j on the session's connection, opening one when there is
// none. A resend (a stream refused by GOAWAY) already holds its in-flight
// slot.
func (s *h2Session) start(j *h2Job, resend bool) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	giveUp := j.due + int64(s.env.timeout)
	if !resend {
		if s.env.emu != nil && j.attempt == 0 {
			s.env.emu.budget.firstAttempt()
		}
		if s.env.admit != nil && !s.env.admit() {
			s.env.report(h2Outcome{res: j.result("", "max_rate")})
			j.finish(nanotime())
			return
		}
		if !s.env.acquireInflight(giveUp) {
			s.env.report(h2Outcome{res: j.result("", "max_inflight")})
			j.finish(nanotime())
			return
		}
		s.wg.Add(1)
	}
	for {
		if resend && s.env.stop.Err() != nil {
			// Refused by the target before the stop: not sent again.
			s.end(j, nil, "", "", nil)
			return
		}
		cn := s.cn
		dialed := false
		if cn == nil {
			if !s.env.acquireConn(giveUp) {
				s.end(j, nil, "", "max_conns", nil)
				return
			}
			if !resend {
				// As on HTTP/1.x, the connection's setup is part of the
				// first request's service time.
				j.sent = nanotime()
			}
			var class string
			var err error
			cn, class, err = s.cl.dial(s.env.dial, clockTime(nanotime()+int64(s.env.timeout)), s.env.timeout,
				h2Hooks{release: s.env.releaseConn, finished: s.finished, retry: s.resend})
			if err != nil {
				s.env.releaseConn()
				if j.sent == 0 {
					j.sent = nanotime()
				}
				s.end(j, nil, class, "", err)
				return
			}
			s.cn = cn
			j.connect, dialed = cn.connect, true
		}
		waitFrom := nanotime()
		ok, gone := cn.slot(giveUp, s.env.stop.Done())
		if gone {
			s.cn = nil
			cn.maybeClose()
			continue
		}
		if !ok {
			why := "stream_slots"
			if s.env.stop.Err() != nil {
				why = "" // counted as stopped by the engine
			}
			s.end(j, nil, "", why, nil)
			return
		}
		if w := nanotime() - waitFrom; w > int64(50*time.Microsecond) {
			j.slotWait += w
		}
		if !resend && !dialed {
			j.sent = nanotime()
		}
		if _, err := cn.open(j); err != nil {
			// open failed the connection, which finished the stream.
			s.cn = nil
		}
		return
	}
}

// resend sends a stream the target refused by GOAWAY on a new connection.
func (s *h2Session) resend(st *h2Stream) {
	j := st.job
	j.retries++
	go s.start(j, true)
}

// finished reports a stream's result.
func (s *h2Session) finished(st *h2Stream) {
	s.end(st.job, st, st.class, "", st.err)
}

// end reports j's result: from stream st when one was opened, an error
// class, or a reason it was not sent ("" when the stop left it unsent).
func (s *h2Session) end(j *h2Job, st *h2Stream, class, notSent string, err error) {
	defer s.wg.Done()
	defer s.env.releaseInflight()
	now := nanotime()
	if notSent != "" || (class == "" && st == nil) {
		switch {
		case notSent != "":
			s.env.report(h2Outcome{res: j.result("", notSent), retries: j.retries, slotWait: j.slotWait})
		case j.last != nil:
			s.cutRetry(j)
			return
		}
		j.finish(now)
		return
	}
	res := j.result(class, "")
	res.done = now
	got := st != nil && st.first != 0
	if st != nil {
		res.first, res.done, res.bytes, res.status = st.first, st.done, st.bytes, int32(st.status)
		res.retryAfter = st.retryAft
		if res.first == 0 {
			res.first = res.done
		}
		if class == "" {
			res.class, res.mismatch, err = judgeH2(j.r, st)
		}
	}
	out := h2Outcome{res: res, err: err, retries: j.retries, slotWait: j.slotWait, connect: j.connect, sentStream: st != nil, got: got}
	if s.env.emu != nil && s.retryLater(j, &out) {
		return
	}
	s.env.report(out)
	j.finish(res.done)
}

// retryLater reports attempt out of j as the emulated client saw it and,
// when the retry policy retries it, sends the request again as a new
// attempt after the policy's delay; it reports whether it did.
func (s *h2Session) retryLater(j *h2Job, out *h2Outcome) bool {
	e := s.env.emu
	wait, retry := e.retry.next(&out.res, int(j.attempt), mix(e.seed, uint64(j.id.vconn), uint64(j.id.req)), e.budget)
	if !retry {
		return false
	}
	s.env.report(*out)
	last := *out
	j.last = &last
	at := out.res.done + int64(wait)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if e.sleepUntil(at) != nil || s.env.stop.Err() != nil {
			s.cutRetry(j)
			return
		}
		if j.attempt == 0 {
			j.logical = j.due
		}
		j.attempt++
		j.due, j.ready, j.sent = at, at, 0
		j.retries, j.slotWait, j.connect = 0, 0, 0
		s.start(j, false)
	}()
	return true
}

// cutRetry ends j, whose retry a stop cut off: nothing more is sent, and
// the request's outcome is its last attempt's, already counted as one.
func (s *h2Session) cutRetry(j *h2Job) {
	o := *j.last
	o.res.nonFinal, o.res.outcomeOnly = false, true
	o.retries, o.slotWait, o.connect = 0, 0, 0
	s.env.report(o)
	j.finish(nanotime())
}

// judgeH2 classes a complete HTTP/2 response: 5xx and a gRPC failure where the
// recording had success are errors; another status or grpc-status than
// recorded is a mismatch.
func judgeH2(r *Req, st *h2Stream) (class string, mismatch bool, err error) {
	if st.status >= 500 {
		return ClassHTTP5xx, false, fmt.Errorf("status %d", st.status)
	}
	if g := r.H2; g != nil && g.GRPC && g.GRPCStatus != "" {
		if g.GRPCStatus == "0" && st.hasGRPC && st.grpc != "0" {
			return ClassGRPC, false, fmt.Errorf("grpc-status %s, recorded 0", st.grpc)
		}
		if st.grpc != g.GRPCStatus {
			return "", true, nil
		}
	}
	return "", r.Status != 0 && st.status != r.Status, nil
}

// close ends the session's connection once its streams are done.
func (s *h2Session) close() {
	s.sendMu.Lock()
	cn := s.cn
	s.cn = nil
	s.sendMu.Unlock()
	if cn != nil {
		cn.mu.Lock()
		cn.closing = true
		cn.mu.Unlock()
		cn.maybeClose()
	}
}
