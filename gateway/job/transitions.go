package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Change is one state change of a job, for the store to apply in one
// transaction: the job row (only if its Version is still the one read),
// its new timeline events, its outputs (replaced when non-nil) and the
// delta to the tenant's credits_used.
type Change struct {
	Job          *Job
	Events       []Event
	Outputs      []Output
	CreditsDelta int64
}

// ErrIllegal is wrapped by every refused transition (a *TransitionError).
var ErrIllegal = errors.New("job: transition not allowed")

// ErrCreateInFlight refuses a delete while the upstream create may be on
// the wire (the answer decides what there is to delete): retry shortly.
var ErrCreateInFlight = errors.New("job: the upstream create is in flight")

// TransitionError is a transition refused in the job's current state;
// Reason, when set, says why (ErrCreateInFlight).
type TransitionError struct {
	From   Status
	Event  string
	Reason error
}

func (e *TransitionError) Error() string {
	if e.Reason != nil {
		return fmt.Sprintf("job: %s not allowed in status %s: %v", e.Event, e.From, e.Reason)
	}
	return fmt.Sprintf("job: %s not allowed in status %s", e.Event, e.From)
}

// Unwrap makes errors.Is match ErrIllegal and the Reason.
func (e *TransitionError) Unwrap() []error {
	if e.Reason != nil {
		return []error{ErrIllegal, e.Reason}
	}
	return []error{ErrIllegal}
}

func (j *Job) refuse(event string) error { return &TransitionError{From: j.Status, Event: event} }

// NewEvent builds a timeline event with data marshaled to JSON.
func NewEvent(typ string, data any, now time.Time) Event {
	ev := Event{Type: typ, CreatedAt: now}
	if data != nil {
		if b, err := json.Marshal(data); err == nil {
			ev.Data = b
		}
	}
	return ev
}

// Retry is the outcome of a failed step: Final fails the job for good,
// else the step runs again at At.
type Retry struct {
	Final bool
	At    time.Time
}

// ReleaseLease clears j's lease (saved with the next change).
func (j *Job) ReleaseLease() { j.LeaseOwner, j.LeaseUntil = "", time.Time{} }

func (j *Job) change(now time.Time, evs ...Event) Change {
	j.UpdatedAt = now
	return Change{Job: j, Events: evs}
}

// releaseCredits returns the reservation of a job nothing was charged for
// (never created, or refunded upstream): the one place credits go back.
func (j *Job) releaseCredits(c *Change) {
	c.CreditsDelta -= j.Credits
	j.Credits = 0
}

// finish ends the job in a terminal status.
func (j *Job) finish(s Status, code, msg string, now time.Time) {
	j.Status, j.ErrorCode, j.ErrorMessage = s, code, msg
	j.FinishedAt, j.NextRunAt = now, time.Time{}
	j.ReleaseLease()
}

// Accept makes j a new pending job of the tenant, due at once; its
// estimated Credits are reserved by the store with the insert.
func (j *Job) Accept(id, tenantID string, now time.Time) Event {
	j.ID, j.TenantID, j.Status = id, tenantID, StatusPending
	j.CreatedAt, j.UpdatedAt, j.NextRunAt = now, now, now
	j.saved = StatusPending
	return NewEvent("created", map[string]any{"tool": j.Tool, "estimated_credits": j.Credits}, now)
}

// UploadFailed records that the job's uploaded inputs could not be sent
// upstream: pending again at r.At, or error (reservation released).
func (j *Job) UploadFailed(now time.Time, err error, r Retry) (Change, error) {
	if j.Status != StatusPending {
		return Change{}, j.refuse("upload_failed")
	}
	j.ReleaseLease()
	j.Attempts++
	c := j.change(now, NewEvent("upload_failed", map[string]any{"error": err.Error(), "attempt": j.Attempts}, now))
	if r.Final {
		j.finish(StatusError, "upload_failed", err.Error(), now)
		j.releaseCredits(&c)
	} else {
		j.NextRunAt = r.At
	}
	return c, nil
}

// StartCreate records the create intent before the request leaves: once
// saved, a job found in creating is never sent again. The lease is kept.
func (j *Job) StartCreate(now time.Time) (Change, error) {
	if j.Status != StatusPending {
		return Change{}, j.refuse("create_sent")
	}
	j.Status = StatusCreating
	j.NextRunAt = now // claimable again once the lease expires, if we die
	return j.change(now, NewEvent("create_sent", map[string]any{"tool": j.Tool, "attempt": j.Attempts + 1}, now)), nil
}

// Throttled puts back a job whose creating save was refused because its
// tenant is at max_in_flight: pending, looked at again at retryAt. The
// first time, the timeline says why.
func (j *Job) Throttled(now, retryAt time.Time, firstTry bool, limit int) (Change, error) {
	if j.Status != StatusCreating {
		return Change{}, j.refuse("queued_locally")
	}
	j.Status = StatusPending
	j.NextRunAt = retryAt
	j.ReleaseLease()
	c := j.change(now)
	if firstTry {
		c.Events = append(c.Events, NewEvent("queued_locally", map[string]any{"reason": "tenant max_in_flight reached", "max_in_flight": limit}, now))
	}
	return c, nil
}

// Created records the upstream project: submitted, tracked from now on,
// the reservation corrected to what was charged. It also answers a job
// parked as create_outcome_unknown meanwhile.
func (j *Job) Created(now time.Time, upstreamID string, charged int64, expectedAt time.Time) (Change, error) {
	if j.Status != StatusCreating && j.Status != StatusCreateOutcomeUnknown {
		return Change{}, j.refuse("submitted")
	}
	c := j.change(now, NewEvent("submitted", map[string]any{"upstream_id": upstreamID, "credits": charged, "expected_at": expectedAt}, now))
	j.Status, j.UpstreamID, j.UpstreamStatus = StatusSubmitted, upstreamID, "queued"
	j.ErrorCode, j.ErrorMessage, j.FinishedAt = "", "", time.Time{}
	c.CreditsDelta = charged - j.Credits
	j.Credits = charged
	j.SubmittedAt, j.Attempts, j.Polls = now, 0, 0
	j.ExpectedAt, j.NextRunAt = expectedAt, expectedAt
	j.ReleaseLease()
	return c, nil
}

// CreateRefused ends a job whose create Magic Hour refused for good
// (nothing was created: the reservation is released).
func (j *Job) CreateRefused(now time.Time, code, msg string) (Change, error) {
	if j.Status != StatusCreating {
		return Change{}, j.refuse("create_refused")
	}
	c := j.change(now, NewEvent("error", map[string]any{"code": code, "message": msg}, now))
	j.finish(StatusError, code, msg, now)
	j.releaseCredits(&c)
	return c, nil
}

// CreateFailed records a create that certainly made no project: pending
// again at r.At, or error after the last attempt (reservation released).
func (j *Job) CreateFailed(now time.Time, err error, r Retry) (Change, error) {
	if j.Status != StatusCreating {
		return Change{}, j.refuse("create_failed")
	}
	j.Attempts++
	j.Status = StatusPending
	j.ReleaseLease()
	c := j.change(now, NewEvent("create_failed", map[string]any{"error": err.Error(), "attempt": j.Attempts}, now))
	if r.Final {
		j.finish(StatusError, "create_failed", err.Error(), now)
		j.releaseCredits(&c)
	} else {
		j.NextRunAt = r.At
	}
	return c, nil
}

// OutcomeUnknown parks a job whose create may or may not have reached
// Magic Hour: never sent again; an operator (or a late answer) decides.
// The reservation stays: the project may exist and be billed.
func (j *Job) OutcomeUnknown(now time.Time, why string) (Change, error) {
	if j.Status != StatusCreating {
		return Change{}, j.refuse("create_outcome_unknown")
	}
	c := j.change(now, NewEvent("create_outcome_unknown", map[string]any{"reason": why}, now))
	j.finish(StatusCreateOutcomeUnknown, "create_outcome_unknown", why, now)
	return c, nil
}

// Upstream is a project as seen by a poll or a webhook.
type Upstream struct {
	Raw            json.RawMessage // the project as received, for the drop-in API
	Status         string
	ErrorCode      string
	ErrorMessage   string
	CreditsCharged int
	Downloads      []Output
}

// rank orders the tracking statuses so that late or reordered news never
// moves a job backwards.
func rank(s Status) int {
	switch s {
	case StatusSubmitted:
		return 0
	case StatusQueued:
		return 1
	case StatusRendering:
		return 2
	}
	return 3
}

// Apply advances a tracked job with what upstream says. It reports whether
// the status changed; news for a job not tracked (late, reordered, or
// already finished) changes nothing and is not an error.
func (j *Job) Apply(now time.Time, st Upstream) (Change, bool) {
	c := Change{Job: j}
	if !j.Status.Tracking() {
		return c, false
	}
	j.UpstreamStatus = st.Status
	var next Status
	switch st.Status {
	case "draft", "queued":
		next = StatusQueued
	case "rendering":
		next = StatusRendering
	case "complete":
		next = StatusStoring
	case "error":
		next = StatusError
	case "canceled":
		next = StatusCanceled
	default:
		return c, false
	}
	if rank(next) <= rank(j.Status) {
		return c, false
	}
	prev := j.Status
	j.Status = next
	j.Attempts = 0
	j.UpdatedAt = now
	if next == StatusStoring || next == StatusError || next == StatusCanceled {
		j.UpstreamProject = st.Raw
	}
	switch next {
	case StatusStoring:
		if len(st.Downloads) == 0 {
			j.finish(StatusError, "no_outputs", "the project completed without any download", now)
			break
		}
		if st.CreditsCharged > 0 {
			c.CreditsDelta = int64(st.CreditsCharged) - j.Credits
			j.Credits = int64(st.CreditsCharged)
		}
		c.Outputs = st.Downloads
		j.NextRunAt = now
		j.ReleaseLease() // a poll in flight loses its save; the store step starts now
	case StatusError:
		code := st.ErrorCode
		if code == "" {
			code = "unknown_error"
		}
		j.finish(StatusError, code, st.ErrorMessage, now)
		j.releaseCredits(&c) // refunded upstream
	case StatusCanceled:
		j.finish(StatusCanceled, "canceled", "the project was canceled on Magic Hour", now)
		j.releaseCredits(&c) // refunded upstream
	}
	c.Events = append(c.Events, NewEvent("status", map[string]any{"from": prev, "to": j.Status}, now))
	return c, true
}

// Polled records a poll's answer: the job advances as Apply says and, while
// still tracked, is polled again after interval.
func (j *Job) Polled(now time.Time, st Upstream, interval time.Duration) (Change, bool, error) {
	if !j.Status.Tracking() {
		return Change{}, false, j.refuse("poll")
	}
	j.ReleaseLease()
	j.Polls++
	pollEv := NewEvent("poll", map[string]any{"upstream_status": st.Status, "poll": j.Polls}, now)
	c, changed := j.Apply(now, st)
	c.Events = append([]Event{pollEv}, c.Events...)
	if !changed || j.Status.Tracking() {
		j.NextRunAt = now.Add(interval)
	}
	j.UpdatedAt = now
	return c, changed, nil
}

// PollFailed records a failed poll: tracked again at r.At, or error (code:
// upstream_not_found or poll_failed). Credits stay: the project was billed.
func (j *Job) PollFailed(now time.Time, err error, code string, r Retry) (Change, error) {
	if !j.Status.Tracking() {
		return Change{}, j.refuse("poll_failed")
	}
	j.ReleaseLease()
	j.Attempts++
	c := j.change(now, NewEvent("poll_failed", map[string]any{"error": err.Error(), "attempt": j.Attempts}, now))
	if r.Final {
		j.finish(StatusError, code, err.Error(), now)
	} else {
		j.NextRunAt = r.At
	}
	return c, nil
}

// StoreFailed records that copying the outputs failed: retried at r.At,
// or error after the last attempt.
func (j *Job) StoreFailed(now time.Time, err error, r Retry) (Change, error) {
	if j.Status != StatusStoring {
		return Change{}, j.refuse("store_failed")
	}
	j.ReleaseLease()
	j.Attempts++
	c := j.change(now, NewEvent("store_failed", map[string]any{"error": err.Error(), "attempt": j.Attempts}, now))
	if r.Final {
		j.finish(StatusError, "store_failed", err.Error(), now)
	} else {
		j.NextRunAt = r.At
	}
	return c, nil
}

// Stored ends a job whose every output is in storage, verified; extra are
// the clean-up's events (upstream_deleted, ...).
func (j *Job) Stored(now time.Time, outputs int, extra ...Event) (Change, error) {
	if j.Status != StatusStoring {
		return Change{}, j.refuse("stored")
	}
	c := j.change(now, append([]Event{NewEvent("stored", map[string]any{"outputs": outputs}, now)}, extra...)...)
	j.finish(StatusStored, "", "", now)
	j.Attempts = 0
	return c, nil
}

// Park clears the due time of a finished job found due (nothing to do).
func (j *Job) Park(now time.Time) (Change, error) {
	if !j.Status.Terminal() {
		return Change{}, j.refuse("park")
	}
	j.NextRunAt = time.Time{}
	j.ReleaseLease()
	return j.change(now), nil
}

// Delete is a client's delete (native or drop-in API, api names which):
// tracking stops, the job reads deleted from now on, and its stored
// outputs are to be deleted by the caller after the change is saved (an
// output step that commits later is refused by the version check and
// discards its file). A job never sent gets its reservation back; one
// created upstream keeps what it was charged. Refused while the create is
// in flight (ErrCreateInFlight). Deleting a deleted job changes nothing
// (changed false).
func (j *Job) Delete(now time.Time, api string) (c Change, changed bool, err error) {
	switch j.Status {
	case StatusCreating:
		return Change{}, false, &TransitionError{From: j.Status, Event: "delete", Reason: ErrCreateInFlight}
	case StatusDeleted:
		return Change{Job: j}, false, nil
	}
	prev := j.Status
	c = j.change(now, NewEvent("deleted_by_client", map[string]any{"api": api, "from": prev}, now))
	if prev == StatusPending {
		j.releaseCredits(&c) // never sent
	}
	if prev.Terminal() {
		j.Status, j.NextRunAt = StatusDeleted, time.Time{}
		j.ReleaseLease()
	} else {
		j.finish(StatusDeleted, "", "", now)
	}
	j.DeletedAt = now
	return c, true, nil
}
