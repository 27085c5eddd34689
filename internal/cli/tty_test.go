package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
)

// TestE2ETerminal drives the binary in a real terminal (tmux), as a person
// would: the live status line must update while the job renders, and the
// final screen must be clean: finished lines, the result, no bar debris.
func TestE2ETerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux not installed (apt-get install tmux): skipping the terminal test")
	}
	// text-to-video's median is 51s: at speed 12 it renders for ~4s.
	emu := emulator.NewServer(t, emulator.WithSpeed(12))
	dir := t.TempDir()
	sock := fmt.Sprintf("hourglass-e2e-%d", os.Getpid())
	session := "hg"
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	defer tm("kill-server")

	script := filepath.Join(dir, "run.sh")
	cmdline := fmt.Sprintf("cd %s && MAGIC_HOUR_POLL_INTERVAL=0.2 NO_COLOR=1 TERM=xterm-256color %s video from-text --prompt 'a cat' --end 5 --base-url %s --api-key %s; echo EXIT=$?; sleep 60\n",
		dir, binary, emu.URL, emu.APIKey)
	if err := os.WriteFile(script, []byte(cmdline), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := tm("new-session", "-d", "-s", session, "-x", "120", "-y", "30", "sh "+script); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}

	statusLine := regexp.MustCompile(`(queued|rendering|submitted)\s+\S+ elapsed, expected ~51s`)
	seen := map[string]bool{}
	var screen string
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		screen, err = tm("capture-pane", "-p", "-t", session)
		if err != nil {
			t.Fatalf("capture-pane: %v: %s", err, screen)
		}
		if m := statusLine.FindString(screen); m != "" {
			seen[m] = true
		}
		if strings.Contains(screen, "EXIT=") {
			break
		}
		time.Sleep(150 * time.Millisecond)
	}
	if !strings.Contains(screen, "EXIT=0") {
		t.Fatalf("the command did not finish well; screen:\n%s", screen)
	}
	if len(seen) < 2 {
		t.Fatalf("the status line did not update (saw %d distinct states: %v); final screen:\n%s", len(seen), keys(seen), screen)
	}
	if !regexp.MustCompile(`(?m)^✓ text-to-video \S+ complete \(\d+ credits\)`).MatchString(screen) ||
		!regexp.MustCompile(`(?m)^  saved \S+\.mp4`).MatchString(screen) {
		t.Fatalf("no result line on the final screen:\n%s", screen)
	}
	if !regexp.MustCompile(`(?m)^✓ complete in \S+\s*$`).MatchString(screen) {
		t.Fatalf("the status line did not end as a finished line:\n%s", screen)
	}
	// Clean: no spinner frames, no live status text, no half-drawn bars.
	for _, junk := range []string{"elapsed", "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", "\x1b"} {
		if strings.Contains(screen, junk) {
			t.Fatalf("leftover %q on the final screen:\n%s", junk, screen)
		}
	}
	for _, line := range strings.Split(screen, "\n") {
		if strings.Contains(line, "[") && strings.Contains(line, "]") && !strings.Contains(line, "✓") {
			t.Fatalf("an unfinished bar is left on the screen: %q\n%s", line, screen)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
