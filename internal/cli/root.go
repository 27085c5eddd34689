// Package cli implements the hourglass command line.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Version overrides the version read from the build info when set at build
// time with -ldflags "-X github.com/hourglasshq/hourglass/internal/cli.Version=v1.2.3".
var Version = ""

// version is the hourglass version: Version, else the module version of
// the build (v1.2.3 from go install …@v1.2.3), else "devel".
func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// versionLine is what `hourglass version` and --version print: the
// version, the commit and its time (from the build's VCS stamp), the Go
// version.
func versionLine() string {
	s := "hourglass " + version()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return s
	}
	var rev, at string
	dirty := false
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			at = kv.Value
		case "vcs.modified":
			dirty = kv.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " (commit " + rev
		if at != "" {
			s += ", " + at
		}
		if dirty {
			s += ", modified"
		}
		s += ")"
	}
	return s + " " + bi.GoVersion
}

// NewRoot builds the root command with every subcommand, its tool
// commands from the built-in catalog.
func NewRoot() *cobra.Command { return newRootWith(catalog.Default()) }

// newRootWith builds the root command with the tool commands of cat.
func newRootWith(cat *catalog.Catalog) *cobra.Command {
	root := &cobra.Command{
		Use:           "hourglass",
		Short:         "Production toolkit for Magic Hour's AI media API",
		Version:       versionLine(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	// Register subcommands here, one constructor per file.
	root.AddCommand(
		newVersionCmd(),
		newEmulateCmd(),
		newServeCmd(),
		newBatchCmd(),
		newMCPCmd(),
	)
	register(root, cat) // API commands (app.go)
	addAPIFlagsToGroups(root)
	applyGroupArgs(root)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the hourglass version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}

// Execute runs the command line and returns the process exit code. SIGINT
// and SIGTERM cancel the command's context.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ic := &interruptEcho{w: os.Stderr}
	cat, err := resolveCatalog(ctx, os.Args[1:], os.Stderr)
	if err == nil {
		ctx := context.WithValue(context.WithValue(ctx, interruptEchoKey{}, ic), catalogKey{}, cat)
		err = newRootWith(cat).ExecuteContext(ctx)
	}
	if ctx.Err() != nil {
		ic.echo()
	}
	if wantsJSON(os.Args[1:]) {
		return ReportJSON(os.Stdout, os.Stderr, err) // exit codes: exitcode.go
	}
	return Report(os.Stderr, err)
}

// wantsJSON reports whether --json is among the arguments (before "--"),
// so that errors found before the flags are parsed are JSON too.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "--json=true" || a == "--json=1" {
			return true
		}
		if strings.HasPrefix(a, "--json=") {
			return false
		}
	}
	return false
}

// interruptEcho puts the terminal's echoed "^C" on a line of its own once,
// before whatever the interrupted command prints next: it erases the
// current line (where the echo is, unless a redraw erased it already) and
// writes "^C" and a newline.
type interruptEcho struct {
	w    *os.File
	done bool
}

type interruptEchoKey struct{}

func (ic *interruptEcho) echo() {
	if ic == nil || ic.done {
		return
	}
	ic.done = true
	if term.IsTerminal(int(ic.w.Fd())) && os.Getenv("TERM") != "dumb" {
		fmt.Fprint(ic.w, "\r\x1b[K^C\n")
	}
}

// afterInterrupt is called by a command about to print after Ctrl-C.
func afterInterrupt(ctx context.Context) {
	if ic, ok := ctx.Value(interruptEchoKey{}).(*interruptEcho); ok {
		ic.echo()
	}
}
