package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/hourglasshq/hourglass/magichour"
)

// display shows the progress of one job on stderr: live bars and a status
// line on a terminal (mpb), plain lines otherwise, nothing with --quiet.
type display struct {
	w        io.Writer
	mode     int // modeQuiet, modePlain, modeTTY
	color    bool
	kind     magichour.Kind
	expected time.Duration // the tool's median, scaled for the emulator

	// mu guards the status text, which the status bar's decorator reads
	// from mpb's goroutine; barMu guards the bars. mpb is never called
	// with mu held, so a render waiting for mu cannot deadlock a caller.
	mu        sync.Mutex
	barMu     sync.Mutex
	p         *mpb.Progress
	upBar     *mpb.Bar
	upStart   time.Time
	upTotal   int64
	upDone    bool
	stBar     *mpb.Bar
	dlBars    map[int]*mpb.Bar
	status    string
	waitStart time.Time
	final     string // the status line's last text once finished
	lastPlain string
	closed    bool
}

const (
	modeQuiet = iota
	modePlain
	modeTTY
)

func newDisplay(e *env, kind magichour.Kind, expected time.Duration) *display {
	d := &display{w: e.stderr, kind: kind, expected: expected, dlBars: map[int]*mpb.Bar{}, color: e.colorErr}
	switch {
	case e.quiet:
		d.mode = modeQuiet
	case e.tty:
		d.mode = modeTTY
		// The console writer goes through interruptWriter so that the
		// first redraw after Ctrl-C starts at column 0, not after the
		// terminal's echoed "^C".
		f := e.stderr.(*os.File)
		cw := cupwriter.New(&interruptWriter{w: f, ctx: e.cmd.Context()}, false)
		cw.SetTermFd(int(f.Fd()))
		d.p = mpb.New(mpb.WithConsoleWriter(cw), mpb.WithWidth(28), mpb.WithRefreshRate(120*time.Millisecond), mpb.WithAutoRefresh())
	default:
		d.mode = modePlain
	}
	return d
}

// interruptWriter writes a carriage return before the first write after
// ctx is canceled (Ctrl-C), so the redraw's cursor-up and erase cover the
// echoed "^C" instead of starting two columns to its right.
type interruptWriter struct {
	w    io.Writer
	ctx  context.Context
	done bool
}

func (w *interruptWriter) Write(p []byte) (int, error) {
	if !w.done && w.ctx != nil && w.ctx.Err() != nil {
		w.done = true
		if _, err := io.WriteString(w.w, "\r"); err != nil {
			return 0, err
		}
	}
	return w.w.Write(p)
}

// setStatus records a status read after the wait stopped (interrupt,
// timeout), so the frozen status line shows the real last one.
func (d *display) setStatus(p *magichour.Project) {
	d.mu.Lock()
	d.status = string(p.Status)
	d.mu.Unlock()
}

// linef prints one line: above the bars on a terminal, plainly otherwise.
func (d *display) linef(format string, args ...any) {
	if d.mode == modeQuiet {
		return
	}
	line := fmt.Sprintf(format, args...) + "\n"
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if d.mode == modeTTY && d.p != nil && !closed {
		if _, err := d.p.Write([]byte(line)); err == nil {
			return
		}
	}
	_, _ = io.WriteString(d.w, line)
}

// progress returns the callbacks for magichour.Generate.
func (d *display) progress() magichour.Progress {
	return magichour.Progress{
		Phase:         d.phase,
		Uploading:     d.uploading,
		UploadBytes:   d.uploadBytes,
		Uploaded:      d.uploaded,
		Created:       d.created,
		Status:        d.statusChanged,
		Downloading:   d.downloading,
		DownloadBytes: d.downloadBytes,
	}
}

func (d *display) phase(ph magichour.Phase) {
	if ph == magichour.PhaseWait {
		d.startWait()
	}
	if ph == magichour.PhaseDownload {
		d.finishStatus()
	}
}

func (d *display) uploading(paths []string) {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	if d.mode == modePlain {
		d.linef("uploading %s", strings.Join(names, ", "))
	}
}

func (d *display) uploadBytes(done, total int64) {
	if d.mode != modeTTY {
		return
	}
	d.barMu.Lock()
	defer d.barMu.Unlock()
	if d.upDone {
		return
	}
	if d.upBar == nil {
		d.upStart, d.upTotal = time.Now(), total
		d.upBar = d.p.AddBar(total, mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name("upload   ", decor.WC{C: decor.DindentRight}),
				decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncWidth)),
			mpb.AppendDecorators(rate(), decor.OnComplete(decor.Name(""), " ✓")))
	}
	d.upBar.SetCurrent(done)
}

// uploaded ends the upload bar. On a terminal the bar is replaced by a
// finished line printed above the live area, so that it stays above the
// lines that follow ("created …") instead of below them.
func (d *display) uploaded(m map[string]string) {
	d.barMu.Lock()
	bar, total, started := d.upBar, d.upTotal, d.upStart
	d.upBar, d.upDone = nil, true
	d.barMu.Unlock()
	if bar != nil {
		if !bar.Completed() {
			bar.Abort(true)
		}
		bar.Wait()
		line := fmt.Sprintf("upload   %s", humanBytes(total))
		if el := time.Since(started).Seconds(); el > 0 {
			line += fmt.Sprintf(" %s/s", humanBytes(int64(float64(total)/el)))
		}
		d.linef("%s ✓", line)
	}
	if d.mode == modePlain {
		for local, remote := range m {
			d.linef("uploaded %s → %s", filepath.Base(local), remote)
		}
	}
}

func (d *display) created(cr *magichour.CreateResponse) {
	d.linef("created %s project %s (%d credits)", cr.Kind, cr.ID, cr.CreditsCharged)
}

// startWait shows the live status line: status, elapsed, expected time.
func (d *display) startWait() { d.startWaitAt(time.Now()) }

// startWaitAt starts the status line's clock at t (a project's creation
// time when waiting for an existing project).
func (d *display) startWaitAt(t time.Time) {
	if t.IsZero() || t.After(time.Now()) {
		t = time.Now()
	}
	d.mu.Lock()
	d.waitStart = t
	d.status = "submitted"
	d.mu.Unlock()
	d.barMu.Lock()
	defer d.barMu.Unlock()
	if d.mode != modeTTY || d.stBar != nil {
		return
	}
	d.stBar = d.p.New(0, mpb.SpinnerStyle("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"),
		mpb.BarWidth(1),
		mpb.BarFillerClearOnComplete(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return d.statusText() })),
	)
}

func (d *display) statusText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.final != "" {
		return d.final
	}
	el := time.Since(d.waitStart)
	s := fmt.Sprintf("%-9s %s elapsed", d.status, clock(el))
	if d.expected > 0 {
		s += ", expected ~" + humanDuration(d.expected)
	}
	return s + " "
}

func (d *display) plainStatus() {
	line := "status: " + d.status
	if d.status == "submitted" || d.status == "queued" || d.status == "rendering" || d.status == "draft" {
		if d.expected > 0 {
			line += fmt.Sprintf(" (elapsed %s, expected ~%s)", clock(time.Since(d.waitStart)), humanDuration(d.expected))
		}
	} else {
		line += " after " + clock(time.Since(d.waitStart))
	}
	if line != d.lastPlain {
		d.lastPlain = line
		_, _ = io.WriteString(d.w, line+"\n")
	}
}

func (d *display) statusChanged(p *magichour.Project) {
	d.mu.Lock()
	if d.waitStart.IsZero() {
		d.waitStart = time.Now()
	}
	d.status = string(p.Status)
	if d.mode == modePlain {
		d.plainStatus()
	}
	d.mu.Unlock()
	if p.Status.Terminal() {
		d.finishStatus()
	}
}

// finishStatus freezes the status line at its final text. The status
// bar's decorator takes d.mu, so the bar is completed after unlocking.
func (d *display) finishStatus() {
	if bar := d.freezeStatus(); bar != nil {
		bar.SetTotal(-1, true)
	}
}

func (d *display) freezeStatus() *mpb.Bar {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.final != "" || d.waitStart.IsZero() {
		return nil
	}
	mark := "✓"
	if d.status != string(magichour.StatusComplete) {
		mark = "✗"
	}
	if d.color {
		if mark == "✓" {
			mark = "\x1b[32m✓\x1b[0m"
		} else {
			mark = "\x1b[31m✗\x1b[0m"
		}
	}
	d.final = fmt.Sprintf("%s %s in %s", mark, d.status, clock(time.Since(d.waitStart)))
	return d.statusBar()
}

func (d *display) statusBar() *mpb.Bar {
	d.barMu.Lock()
	defer d.barMu.Unlock()
	return d.stBar
}

func (d *display) downloading(p *magichour.Project) {
	if d.mode == modePlain {
		d.linef("downloading %d output(s)", len(p.Downloads))
	}
}

func (d *display) downloadBytes(i int, done, total int64) {
	if d.mode == modePlain {
		if total > 0 && done == total {
			d.linef("downloaded output %d (%s)", i, humanBytes(total))
		}
		return
	}
	if d.mode != modeTTY {
		return
	}
	d.barMu.Lock()
	defer d.barMu.Unlock()
	b := d.dlBars[i]
	if b == nil {
		b = d.p.AddBar(max(total, 0),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("output %-2d", i), decor.WC{C: decor.DindentRight}),
				decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncWidth)),
			mpb.AppendDecorators(rate(), decor.OnComplete(decor.Name(""), " ✓")))
		d.dlBars[i] = b
	}
	if total > 0 && b.Current() == 0 {
		b.SetTotal(total, false)
	}
	b.SetCurrent(done)
	if total > 0 && done >= total {
		b.SetTotal(total, true)
	}
}

// close stops the live display, leaving completed lines in place and
// aborted ones frozen; it must be called before printing results.
func (d *display) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	if !d.waitStart.IsZero() && d.final == "" {
		d.final = fmt.Sprintf("· %s after %s", d.status, clock(time.Since(d.waitStart)))
	}
	d.mu.Unlock()
	d.barMu.Lock()
	var bars []*mpb.Bar
	if d.upBar != nil {
		bars = append(bars, d.upBar)
	}
	for _, b := range d.dlBars {
		bars = append(bars, b)
	}
	st := d.stBar
	d.barMu.Unlock()
	if d.p == nil {
		return
	}
	if st != nil && !st.Completed() {
		st.SetTotal(-1, true)
	}
	for _, b := range bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	d.p.Wait()
}

// clock formats an elapsed time: 4.2s, 1m05s, 1h02m.
func clock(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// humanDuration formats an expected duration: 51s, 1m14s, 12m52s.
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "?"
	}
	if d < 10*time.Second && d%time.Second != 0 {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	if d < time.Hour {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// rate shows a bar's average transfer rate, kept (not blanked) once the
// bar completes, even when it completed between two refreshes.
func rate() decor.Decorator {
	start := time.Now()
	var final string
	return decor.Any(func(s decor.Statistics) string {
		if final != "" {
			return final
		}
		el := time.Since(start).Seconds()
		if el <= 0 {
			return ""
		}
		txt := " " + humanBytes(int64(float64(s.Current)/el)) + "/s"
		if s.Completed {
			final = txt
		}
		return txt
	})
}
