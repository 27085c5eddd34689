package cli

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// closest returns the candidate nearest to typed (edit distance at most a
// third of its length, at least 2), or "" when none is near.
func closest(typed string, candidates []string) string {
	best, bestD := "", 0
	limit := max(2, len(typed)/3)
	for _, c := range candidates {
		d := levenshtein.ComputeDistance(strings.ToLower(typed), strings.ToLower(c))
		if strings.HasPrefix(c, typed) && len(typed) >= 3 {
			d = min(d, 1)
		}
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

var unknownFlag = regexp.MustCompile(`^unknown flag: --([^\s=]+)`)

// flagError turns pflag's errors into usage errors, with "did you mean"
// for a misspelt flag.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if m := unknownFlag.FindStringSubmatch(msg); m != nil {
		var names []string
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden {
				names = append(names, f.Name)
			}
		})
		cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
		if s := closest(m[1], names); s != "" {
			return &exitError{code: ExitUsage, msg: fmt.Sprintf("%s; did you mean --%s? (see %s --help)", msg, s, cmd.CommandPath())}
		}
	}
	return &exitError{code: ExitUsage, msg: msg + " (see " + cmd.CommandPath() + " --help)"}
}

// groupArgs is the Args check of a command group: a word that is not one
// of its subcommands is an unknown command, with "did you mean".
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := suggestCommand(cmd, args[0]); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return &exitError{code: ExitUsage, msg: msg + " (see " + cmd.CommandPath() + " --help)"}
}

// suggestCommand finds the subcommand nearest to typed; at the root it
// also looks one level down, so "genrate" finds "image generate".
func suggestCommand(cmd *cobra.Command, typed string) string {
	if s := cmd.SuggestionsFor(typed); len(s) > 0 {
		return s[0]
	}
	var names []string
	full := map[string]string{}
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		names = append(names, c.Name())
		names = append(names, c.Aliases...)
		if cmd.HasParent() {
			continue
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				for _, n := range append([]string{sub.Name()}, sub.Aliases...) {
					if _, dup := full[n]; !dup {
						full[n] = c.Name() + " " + sub.Name()
						names = append(names, n)
					}
				}
			}
		}
	}
	s := closest(typed, names)
	if f, ok := full[s]; ok {
		return f
	}
	return s
}

// applyGroupArgs gives every command group (a command with subcommands and
// no Args check of its own beyond NoArgs) the "did you mean" check.
func applyGroupArgs(c *cobra.Command) {
	if !c.HasParent() {
		c.Args = groupArgs
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	for _, sub := range c.Commands() {
		if sub.HasSubCommands() {
			sub.Args = groupArgs
			applyGroupArgs(sub)
		}
	}
}
