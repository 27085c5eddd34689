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

	statusLine := regexp.MustCompile(`(queued|rendering|submitted)\s+\S+ elapsed, expected ~4\.\ds`) // 51s at speed 12
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

// TestE2ETerminalInterrupt: a profile set up, a generate with a new output
// folder, Ctrl-C, then the resume hint pasted back, in a real terminal.
// After Ctrl-C the screen is clean: the upload line above the later lines,
// the status line frozen at the real last status, "^C" on a line of its
// own, and a hint that works as pasted.
func TestE2ETerminalInterrupt(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux not installed (apt-get install tmux): skipping the terminal test")
	}
	// image-to-video's median is 1m14s: at speed 5 it takes ~15s, time
	// enough to see the status line and press Ctrl-C on a loaded machine.
	const key = "mhk_live_typed_once"
	emu := emulator.NewServer(t, emulator.WithSpeed(5), emulator.WithAPIKeys(key))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	writeMedia(t, dir, "in.png")
	if err := os.WriteFile(filepath.Join(dir, "key.txt"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := fmt.Sprintf("hourglass-int-%d", os.Getpid())
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	defer tm("kill-server")
	env := fmt.Sprintf("XDG_CONFIG_HOME=%s MAGIC_HOUR_POLL_INTERVAL=0.2 NO_COLOR=1 TERM=xterm-256color PS1='$ '", cfg)
	if out, err := tm("new-session", "-d", "-s", "hg", "-x", "150", "-y", "45", "env -i PATH="+os.Getenv("PATH")+" HOME="+dir+" "+env+" sh"); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	screen := func() string {
		s, err := tm("capture-pane", "-p", "-t", "hg")
		if err != nil {
			t.Fatalf("capture-pane: %v: %s", err, s)
		}
		return s
	}
	waitScreen := func(what string, re *regexp.Regexp) string {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for time.Now().Before(deadline) {
			if s := screen(); re.MatchString(s) {
				return s
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s; screen:\n%s", what, screen())
		return ""
	}
	send := func(line string) {
		if out, err := tm("send-keys", "-t", "hg", "-l", line); err != nil {
			t.Fatalf("send-keys: %v %s", err, out)
		}
		if out, err := tm("send-keys", "-t", "hg", "Enter"); err != nil {
			t.Fatalf("send-keys: %v %s", err, out)
		}
	}
	send("cd " + dir)
	send(fmt.Sprintf("%s config set --profile emu base_url %s", binary, emu.URL))
	send(fmt.Sprintf("%s config set --profile emu api_key < key.txt", binary))
	waitScreen("the profile", regexp.MustCompile(`api_key = \(hidden\)`))
	send(fmt.Sprintf("%s video from-image --image in.png --prompt waves --end 5 --profile emu -o new/folder; echo EXIT=$?", binary))
	waitScreen("the live status line", regexp.MustCompile(`(queued|rendering)\s+\S+ elapsed`))
	if out, err := tm("send-keys", "-t", "hg", "C-c"); err != nil {
		t.Fatalf("send C-c: %v %s", err, out)
	}
	s := waitScreen("the exit", regexp.MustCompile(`EXIT=\d`))
	if !strings.Contains(s, "EXIT=4") {
		t.Fatalf("exit code not 4:\n%s", s)
	}
	lines := strings.Split(s, "\n")
	idx := func(re string) int {
		for i, l := range lines {
			if regexp.MustCompile(re).MatchString(l) {
				return i
			}
		}
		return -1
	}
	up, created, frozen, ctrlC, msg := idx(`^upload\s+.*✓`), idx(`^created video project`), idx(`^· (queued|rendering) after \S+\s*$`), idx(`^\^C\s*$`), idx(`^hourglass: interrupted while waiting for video project \S+ \(last status (queued|rendering)\)`)
	if up < 0 || created < 0 || frozen < 0 || ctrlC < 0 || msg < 0 || !(up < created && created < frozen && frozen < ctrlC && ctrlC < msg) {
		t.Fatalf("lines out of place (upload %d, created %d, frozen status %d, ^C %d, message %d):\n%s", up, created, frozen, ctrlC, msg, s)
	}
	for _, junk := range []string{"elapsed", "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", "\x1b", "unknown", key} {
		if strings.Contains(s, junk) {
			t.Fatalf("leftover %q on the screen:\n%s", junk, s)
		}
	}
	m := regexp.MustCompile(`Resume with: (hourglass video wait \S+ --profile emu)\s*\n`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no pasteable resume hint:\n%s", s)
	}
	send("clear")
	send(binary + strings.TrimPrefix(m[1], "hourglass") + " -d -o new/folder; echo RESUMED=$?")
	s = waitScreen("the resumed wait", regexp.MustCompile(`RESUMED=\d`))
	if !strings.Contains(s, "RESUMED=0") || !regexp.MustCompile(`(?m)^✓ image-to-video \S+ complete`).MatchString(s) || !regexp.MustCompile(`saved new/folder/\S+\.mp4`).MatchString(s) {
		t.Fatalf("the pasted hint did not finish the job:\n%s", s)
	}
	if tr := os.Getenv("HOURGLASS_TRANSCRIPT"); tr != "" {
		_ = os.WriteFile(tr, []byte(s), 0o644)
	}
}
