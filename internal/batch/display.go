package batch

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// progress is one snapshot of a running batch.
type progress struct {
	total, done, running, failed, pending int
	credits                               int64
	eta                                   time.Duration
}

func (r *Run) progress() progress {
	var p progress
	now := r.opts.Now()
	r.mu.Lock()
	running := make(map[*Entry]time.Time, len(r.running))
	for e, t := range r.running {
		running[e] = t
	}
	stopCap := r.stopCap
	r.mu.Unlock()
	var work time.Duration // expected time left, summed over lines
	r.st.mu.Lock()
	for _, e := range r.st.entries {
		p.total++
		p.credits += e.charged()
		switch {
		case e.Status == StatusComplete:
			p.done++
		case running[e] != time.Time{}:
			p.running++
			left := r.median(e.Tool) - now.Sub(running[e])
			work += max(left, r.median(e.Tool)/10)
		case e.Status == StatusPending || e.Status == StatusSubmitted || e.Status == StatusCreating:
			p.pending++
			if !stopCap || e.Status != StatusPending {
				work += r.median(e.Tool)
			}
		default:
			p.failed++
		}
	}
	r.st.mu.Unlock()
	if n := min(r.opts.Concurrency, max(p.running+p.pending, 1)); n > 0 {
		p.eta = work / time.Duration(n)
	}
	return p
}

// median is a tool's median duration from the catalog, scaled.
func (r *Run) median(tool string) time.Duration {
	op := catalog.Lookup(tool)
	if op == nil {
		return 0
	}
	return time.Duration(float64(op.P50) / r.opts.TimeScale)
}

func (p progress) String() string {
	return fmt.Sprintf("batch: %d/%d done, %d running, %d failed, %d waiting, %d credits, ETA %s",
		p.done, p.total, p.running, p.failed, p.pending, p.credits, roundDur(p.eta))
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d > time.Minute:
		return d.Round(time.Second)
	case d > time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// display shows the progress (redrawn in place on a terminal, one line
// every 10 s otherwise) and checkpoints the manifest, until the run ends.
func (r *Run) display(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastCheckpoint, lastPlain := r.opts.Now(), time.Time{}
	w := r.opts.Progress
	for {
		r.mu.Lock()
		finished := r.queue == nil
		r.mu.Unlock()
		now := r.opts.Now()
		if now.Sub(lastCheckpoint) >= r.opts.CheckpointEvery {
			if err := r.st.checkpoint(); err != nil {
				r.log.Error("batch: write the manifest", "err", err)
			}
			lastCheckpoint = now
		}
		if w != nil {
			p := r.progress()
			switch {
			case r.opts.TTY:
				fmt.Fprintf(w, "\r\033[K%s", p)
				if finished {
					fmt.Fprintln(w)
				}
			case finished || now.Sub(lastPlain) >= 10*time.Second:
				fmt.Fprintln(w, p)
				lastPlain = now
			}
		}
		if finished {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			// Keep drawing until the workers are gone (a create finishing).
			select {
			case <-tick.C:
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// writeSummary prints the end-of-run table: one row per tool and status.
func writeSummary(w io.Writer, s *Summary) {
	type row struct {
		tool    string
		counts  map[string]int
		credits int64
	}
	rows := map[string]*row{}
	for i := range s.Entries {
		e := &s.Entries[i]
		tool := e.Tool
		if tool == "" {
			tool = "?"
		}
		rw := rows[tool]
		if rw == nil {
			rw = &row{tool: tool, counts: map[string]int{}}
			rows[tool] = rw
		}
		st := e.Status
		if st == StatusSubmitted && e.Error != nil {
			st = "download_failed"
		}
		rw.counts[st]++
		rw.credits += e.charged()
	}
	var cols []string
	for _, st := range statusOrder {
		if s.Counts[st] > 0 {
			cols = append(cols, st)
		}
	}
	names := make([]string, 0, len(rows))
	for n := range rows {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tool\tlines\t%s\tcredits\t\n", strings.Join(cols, "\t"))
	for _, n := range names {
		rw := rows[n]
		total := 0
		var cells []string
		for _, c := range cols {
			total += rw.counts[c]
			cells = append(cells, fmt.Sprint(rw.counts[c]))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t\n", n, total, strings.Join(cells, "\t"), rw.credits)
	}
	var totals []string
	for _, c := range cols {
		totals = append(totals, fmt.Sprint(s.Counts[c]))
	}
	fmt.Fprintf(tw, "total\t%d\t%s\t%d\t\n", len(s.Entries), strings.Join(totals, "\t"), s.Credits)
	tw.Flush()
	shown := 0
	for i := range s.Entries {
		e := &s.Entries[i]
		if e.Error == nil || e.Status == StatusComplete {
			continue
		}
		if shown == 10 {
			fmt.Fprintf(w, "  ... (every line is in the manifest)\n")
			break
		}
		fmt.Fprintf(w, "  line %d (%s): %s: %s\n", e.Line, e.Status, e.Error.Code, e.Error.Message)
		shown++
	}
	if s.CapLine != 0 {
		fmt.Fprintf(w, "stopped by the credit cap before line %d; raise --max-credits and rerun to continue\n", s.CapLine)
	}
	if s.Interrupted {
		fmt.Fprintf(w, "interrupted: rerun the same command to continue (nothing is submitted twice)\n")
	}
	if failed := s.Counts[StatusError] + s.Counts[StatusCanceled]; failed > 0 {
		fmt.Fprintf(w, "%d line(s) failed; retry only them with: hourglass batch run %s --retry-failed\n", failed, s.Manifest)
	}
	if n := s.Counts[StatusOutcomeUnknown]; n > 0 {
		fmt.Fprintf(w, "%d line(s) may have been created without an answer; they are not resent (--resend-unknown would, at the risk of a second charge)\n", n)
	}
	fmt.Fprintf(w, "manifest: %s\n", s.Manifest)
}

// dryRun validates and estimates without creating anything or writing a
// file.
func dryRun(in *Input, opts Options) (*Summary, error) {
	s := &Summary{Manifest: opts.Manifest, Counts: map[string]int{}}
	prev := map[string]Entry{}
	if in.Manifest {
		for _, r := range in.Records {
			if r.Line.Prev != nil {
				prev[r.Line.Key] = *r.Line.Prev
			}
		}
	} else if known, err := readState(opts.Manifest); err == nil {
		prev = known
	}
	type toolRow struct {
		lines int
		est   int64
		p50   time.Duration
	}
	byTool := map[string]*toolRow{}
	var committed, work int64
	var wall time.Duration
	for _, r := range in.Records {
		if !r.Valid() {
			s.Counts[StatusInvalid]++
			continue
		}
		if p, ok := prev[r.Line.Key]; ok && p.Status != StatusPending && !(opts.RetryFailed && Failed(p.Status)) {
			committed += p.charged()
			s.Counts[p.Status]++
			continue
		}
		est := opts.Estimate(r.Line.Tool, r.Line.Params)
		if opts.MaxCredits > 0 && s.CapLine == 0 && committed+work+est > opts.MaxCredits {
			s.CapLine = r.Line.N
		}
		if s.CapLine == 0 {
			work += est
		}
		s.Counts[StatusPending]++
		tr := byTool[r.Line.Tool]
		if tr == nil {
			op := catalog.Lookup(r.Line.Tool)
			tr = &toolRow{p50: time.Duration(float64(op.P50) / opts.TimeScale)}
			byTool[r.Line.Tool] = tr
		}
		tr.lines++
		tr.est += est
		wall += tr.p50
	}
	s.EstimatedCredits = work
	s.Credits = committed
	if w := opts.Progress; w != nil {
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "tool\tlines to run\testimated credits\tmedian\t\n")
		tools := make([]string, 0, len(byTool))
		for t := range byTool {
			tools = append(tools, t)
		}
		sort.Strings(tools)
		for _, t := range tools {
			tr := byTool[t]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", t, tr.lines, tr.est, roundDur(tr.p50))
		}
		tw.Flush()
		fmt.Fprintf(w, "dry run: %d line(s) valid, %d invalid, %d already done or created; estimated %d credits to run (plus %d committed), about %s at concurrency %d; nothing was created\n",
			len(in.Records)-s.Counts[StatusInvalid], s.Counts[StatusInvalid], len(in.Records)-s.Counts[StatusInvalid]-s.Counts[StatusPending],
			work, committed, roundDur(wall/time.Duration(max(1, opts.Concurrency))), opts.Concurrency)
		if s.CapLine != 0 {
			fmt.Fprintf(w, "the credit cap %d would stop the batch before line %d\n", opts.MaxCredits, s.CapLine)
		}
		for _, e := range in.Errors() {
			fmt.Fprintf(w, "  skipped (--skip-invalid): %s\n", e)
		}
	}
	return s, nil
}
