package magichour

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Default expected durations used by Wait when neither WithExpected nor
// WithTool says how long the job should take.
const (
	DefaultExpectedImage = 10 * time.Second
	DefaultExpectedVideo = 120 * time.Second
	DefaultExpectedAudio = 20 * time.Second
)

// DefaultMaxPollInterval bounds the gap between two polls of Wait.
const DefaultMaxPollInterval = 60 * time.Second

// DefaultTransientErrorLimit is how many consecutive polls may fail with a
// transient error (after the client's own retries) before Wait gives up.
const DefaultTransientErrorLimit = 5

// PollSchedule decides when Wait polls. All durations are in uncompressed
// ("real API") time; see WithTimeScale.
//
// The schedule is built around the job's expected (median) duration E and
// a detection-lag target: a job that ends at time D should be noticed by
// max(MinInterval, LagFraction·D). Observed durations spread around E
// (roughly lognormal; fewer than 3% of jobs end before E/2), so:
//
//   - the first poll comes early, at E/8 clamped to [250ms, 2s], to catch
//     very fast jobs and bad ids;
//   - before DenseFrom·E each poll comes at three times the elapsed time of
//     the previous one (sparse phase: few jobs end there);
//   - from DenseFrom·E on, each gap is max(MinInterval, LagFraction·t) where
//     t is the time elapsed: a geometric schedule whose gaps grow with the
//     elapsed time, so a job ending at D is seen within about
//     LagFraction·D (or MinInterval), and a job running late is polled
//     ever less often;
//   - no gap exceeds MaxInterval.
//
// The zero value is not useful; start from DefaultPollSchedule.
type PollSchedule struct {
	// Expected is the job's expected (median) duration.
	Expected time.Duration
	// FirstMin and FirstMax clamp the first poll, at Expected/8.
	FirstMin, FirstMax time.Duration
	// DenseFrom is the fraction of Expected where dense polling starts.
	DenseFrom float64
	// LagFraction is the target detection lag as a fraction of elapsed time.
	LagFraction float64
	// MinInterval is the smallest gap between polls in the dense phase.
	MinInterval time.Duration
	// MaxInterval is the largest gap between polls.
	MaxInterval time.Duration
}

// DefaultPollSchedule returns the schedule Wait uses for a job expected to
// take expected. The lag targets are a little tighter than 1 s and 10% to
// leave room for the round trip of the poll itself.
func DefaultPollSchedule(expected time.Duration) PollSchedule {
	return PollSchedule{
		Expected:    expected,
		FirstMin:    250 * time.Millisecond,
		FirstMax:    2 * time.Second,
		DenseFrom:   0.5,
		LagFraction: 0.09,
		MinInterval: 800 * time.Millisecond,
		MaxInterval: DefaultMaxPollInterval,
	}
}

// Next returns how long to wait before the next poll, given the time
// elapsed since waiting began and whether any poll has happened yet. It is
// a pure function of its arguments.
func (s PollSchedule) Next(elapsed time.Duration, polled bool) time.Duration {
	exp := s.Expected
	if exp <= 0 {
		exp = DefaultExpectedImage
	}
	maxI := s.MaxInterval
	if maxI <= 0 {
		maxI = DefaultMaxPollInterval
	}
	minI := max(s.MinInterval, time.Millisecond)
	if !polled {
		first := min(max(exp/8, s.FirstMin), s.FirstMax)
		return max(min(first-elapsed, maxI), 0)
	}
	dense := time.Duration(s.DenseFrom * float64(exp))
	var d time.Duration
	if elapsed < dense {
		// Sparse phase: triple the elapsed time, but do not skip past
		// the start of the dense phase.
		d = max(min(2*elapsed, dense-elapsed), minI)
	} else {
		d = max(time.Duration(s.LagFraction*float64(elapsed)), minI)
	}
	return min(d, maxI)
}

// Times returns the poll times (elapsed since waiting began) of the
// schedule up to and including the first one at or after until. It is
// meant for tests and for understanding the schedule.
func (s PollSchedule) Times(until time.Duration) []time.Duration {
	var out []time.Duration
	t := s.Next(0, false)
	out = append(out, t)
	for t < until {
		t += s.Next(t, true)
		out = append(out, t)
	}
	return out
}

// WaitOption configures Wait (and WebhookWaiter.Wait).
type WaitOption func(*waitConfig)

type waitConfig struct {
	expected     time.Duration
	maxInterval  time.Duration
	timeScale    float64
	onStatus     func(*Project)
	transientMax int
	schedule     *PollSchedule
	startedAt    time.Time
}

// WithExpected tells Wait how long the job is expected to take (its median
// processing time). It overrides WithTool.
func WithExpected(d time.Duration) WaitOption {
	return func(c *waitConfig) {
		if d > 0 {
			c.expected = d
		}
	}
}

// WithTool tells Wait which tool made the job, so that it polls around the
// tool's observed median (Tool.P50).
func WithTool(t Tool) WaitOption {
	return func(c *waitConfig) {
		if c.expected == 0 && t.P50() > 0 {
			c.expected = t.P50()
		}
	}
}

// WithMaxInterval bounds the gap between two polls (default
// DefaultMaxPollInterval, in uncompressed time).
func WithMaxInterval(d time.Duration) WaitOption {
	return func(c *waitConfig) {
		if d > 0 {
			c.maxInterval = d
		}
	}
}

// WithTimeScale divides every interval by x: with x = 200 a schedule meant
// for a 10-minute job runs in 3 seconds. Use it with an emulator sped up by
// the same factor (emulator.WithSpeed); values <= 0 are ignored.
func WithTimeScale(x float64) WaitOption {
	return func(c *waitConfig) {
		if x > 0 {
			c.timeScale = x
		}
	}
}

// WithStatusCallback calls fn with the project each time its status
// changes (and once for the first status seen), from the waiting goroutine.
func WithStatusCallback(fn func(*Project)) WaitOption {
	return func(c *waitConfig) { c.onStatus = fn }
}

// WithTransientErrorLimit sets how many consecutive polls may fail with a
// transient error (network error, 429, 5xx, each already retried by the
// client) before Wait returns it (default DefaultTransientErrorLimit).
func WithTransientErrorLimit(n int) WaitOption {
	return func(c *waitConfig) {
		if n > 0 {
			c.transientMax = n
		}
	}
}

// WithStartedAt tells Wait when the job began (the project's CreatedAt),
// so that a job picked up later is polled by its real age rather than from
// the moment Wait was called. Times in the future are ignored.
func WithStartedAt(t time.Time) WaitOption {
	return func(c *waitConfig) { c.startedAt = t }
}

// WithPollSchedule replaces the whole polling schedule (Expected and
// MaxInterval of s are still overridden by WithExpected, WithTool and
// WithMaxInterval when given).
func WithPollSchedule(s PollSchedule) WaitOption {
	return func(c *waitConfig) { c.schedule = &s }
}

func newWaitConfig(kind Kind, opts []WaitOption) waitConfig {
	cfg := waitConfig{timeScale: 1, transientMax: DefaultTransientErrorLimit}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.expected == 0 {
		cfg.expected = defaultExpected(kind)
	}
	return cfg
}

func defaultExpected(kind Kind) time.Duration {
	switch kind {
	case KindVideo:
		return DefaultExpectedVideo
	case KindAudio:
		return DefaultExpectedAudio
	}
	return DefaultExpectedImage
}

func (cfg *waitConfig) pollSchedule() PollSchedule {
	s := DefaultPollSchedule(cfg.expected)
	if cfg.schedule != nil {
		s = *cfg.schedule
		s.Expected = cfg.expected
	}
	if cfg.maxInterval > 0 {
		s.MaxInterval = cfg.maxInterval
	}
	return s
}

// scale converts an uncompressed duration to wall-clock time.
func (cfg *waitConfig) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) / cfg.timeScale)
}

// unscale converts wall-clock time to uncompressed time.
func (cfg *waitConfig) unscale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * cfg.timeScale)
}

// Wait polls the project until it reaches a terminal status and returns it.
//
// It returns the project and nil when the job completed, the project and a
// *JobError (matching ErrJobFailed) when it failed, and the project and a
// *CanceledError (matching ErrCanceled) when it was canceled. When ctx ends
// first it returns the last project seen (possibly nil) and an error
// wrapping ctx.Err(). A non-transient API error (404, 401, ...) is returned
// at once; transient ones (already retried by the client) are tolerated up
// to WithTransientErrorLimit consecutive failures.
//
// Polls follow a PollSchedule built from the expected duration (WithTool,
// WithExpected, or a default per kind: image 10s, video 2m, audio 20s): far
// fewer requests than fixed-interval polling, while a job ending at D is
// noticed within about max(1s, 10% of D).
func (c *Client) Wait(ctx context.Context, kind Kind, id string, opts ...WaitOption) (*Project, error) {
	if err := checkProjectArgs(kind, id); err != nil {
		return nil, err
	}
	cfg := newWaitConfig(kind, opts)
	sched := cfg.pollSchedule()
	start := time.Now()
	if !cfg.startedAt.IsZero() && cfg.startedAt.Before(start) {
		start = cfg.startedAt
	}
	var (
		last     *Project
		lastStat Status
		failures int
		polled   bool
	)
	for {
		elapsed := cfg.unscale(time.Since(start))
		delay := cfg.scale(sched.Next(elapsed, polled))
		if err := sleepCtx(ctx, delay); err != nil {
			return last, waitCtxError(kind, id, last, err)
		}
		polled = true
		p, err := c.GetProject(ctx, kind, id)
		if err != nil {
			if ctx.Err() != nil {
				return last, waitCtxError(kind, id, last, ctx.Err())
			}
			if !isTransient(err) {
				return last, fmt.Errorf("magichour: wait for %s project %s: %w", kind, id, err)
			}
			failures++
			if failures >= cfg.transientMax {
				return last, fmt.Errorf("magichour: wait for %s project %s: %d polls in a row failed: %w", kind, id, failures, err)
			}
			c.logger.Log(ctx, retryLogLevel(0), "magichour: poll failed, still waiting", "kind", kind, "id", id, "err", err.Error())
			continue
		}
		failures = 0
		last = p
		if p.Status != lastStat {
			lastStat = p.Status
			if cfg.onStatus != nil {
				cfg.onStatus(p)
			}
		}
		if p.Status.Terminal() {
			return p, p.Err()
		}
	}
}

// waitCtxError wraps a context error with what was last known.
func waitCtxError(kind Kind, id string, last *Project, err error) error {
	status := "no status seen yet"
	if last != nil {
		status = "last status " + string(last.Status)
	}
	return fmt.Errorf("magichour: wait for %s project %s (%s): %w", kind, id, status, err)
}

// isTransient reports whether a failed poll is worth repeating later.
func isTransient(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	if errors.Is(err, ErrInvalidRequest) {
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// Unexpected EOFs, resets and decode errors of a truncated answer.
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
