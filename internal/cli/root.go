// Package cli implements the hourglass command line.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is the hourglass version, set at build time with
// -ldflags "-X github.com/hourglasshq/hourglass/internal/cli.Version=v1.2.3".
var Version = "dev"

// NewRoot builds the root command with every subcommand.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "hourglass",
		Short:         "Production toolkit for Magic Hour's AI media API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Register subcommands here, one constructor per file.
	root.AddCommand(
		newVersionCmd(),
		newEmulateCmd(),
		newServeCmd(),
	)
	register(root) // API commands and their global flags (app.go)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the hourglass version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "hourglass", Version)
			return err
		},
	}
}

// Execute runs the command line and returns the process exit code. SIGINT
// and SIGTERM cancel the command's context.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Report(os.Stderr, NewRoot().ExecuteContext(ctx)) // exit codes: exitcode.go
}
