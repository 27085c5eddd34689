package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

// projectCmds are get, wait, download and delete for projects of one kind.
func projectCmds(kind catalog.Kind) []*cobra.Command {
	k := magichour.Kind(kind)
	a := "a"
	if kind == catalog.KindImage || kind == catalog.KindAudio {
		a = "an"
	}
	get := &cobra.Command{
		Use:   "get ID",
		Short: fmt.Sprintf("Show %s %s project: status, credits, output URLs", a, kind),
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, ctx, done, err := start(cmd)
			if err != nil {
				return err
			}
			defer done()
			p, err := e.client.GetProject(ctx, k, args[0])
			if err != nil {
				return apiError(ctx, err)
			}
			return e.emit(newResult("", k, nil, p, nil), nil)
		},
	}

	var waitDL bool
	var waitDir string
	wait := &cobra.Command{
		Use:   "wait ID",
		Short: fmt.Sprintf("Wait for %s %s project to finish (exit 1 if it fails), optionally downloading it", a, kind),
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return waitAndMaybeDownload(cmd, k, args[0], waitDL, waitDir)
		},
	}
	wait.Flags().BoolVarP(&waitDL, "download", "d", false, "download the outputs once complete")
	wait.Flags().StringVarP(&waitDir, "output", "o", ".", "directory for --download (created if missing)")
	wait.Flags().Bool("overwrite", false, "replace an existing <id>-<n>.<ext> instead of saving as … (2)")

	var dlDir string
	download := &cobra.Command{
		Use:   "download ID",
		Short: fmt.Sprintf("Download the outputs of %s %s project (waiting for it first if needed); skips identical files", a, kind),
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return waitAndMaybeDownload(cmd, k, args[0], true, dlDir)
		},
	}
	download.Flags().StringVarP(&dlDir, "output", "o", ".", "directory to save the outputs in (created if missing)")
	download.Flags().Bool("overwrite", false, "replace an existing <id>-<n>.<ext> instead of saving as … (2)")
	_ = download.MarkFlagDirname("output")

	del := &cobra.Command{
		Use:   "delete ID",
		Short: fmt.Sprintf("Delete %s %s project and its outputs at Magic Hour (permanent)", a, kind),
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, ctx, done, err := start(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := e.client.DeleteProject(ctx, k, args[0]); err != nil {
				return apiError(ctx, err)
			}
			if e.json {
				r := &result{ID: args[0], Kind: string(kind), Status: "deleted", Outputs: []outputRef{}, Downloads: []string{}, Emulator: e.emulated}
				return r.writeJSON(e.stdout)
			}
			fmt.Fprintf(e.stdout, "deleted %s project %s\n", kind, args[0])
			return nil
		},
	}
	return []*cobra.Command{get, wait, download, del}
}

func exactID(cmd *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return usageErrorf("%s needs exactly one project ID, e.g. hourglass %s", cmd.CommandPath(), cmd.CommandPath()+" cm1abc…")
	}
	return nil
}

// start prepares a command that talks to the API.
func start(cmd *cobra.Command) (*env, context.Context, func(), error) {
	e := newEnv(cmd)
	ctx, cancel := e.context()
	if err := e.connect(ctx); err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return e, ctx, func() { e.cleanup(); cancel() }, nil
}

func waitAndMaybeDownload(cmd *cobra.Command, k magichour.Kind, id string, download bool, dir string) error {
	if download {
		if err := ensureDir(dir); err != nil {
			return err
		}
	}
	e, ctx, done, err := start(cmd)
	if err != nil {
		return err
	}
	defer done()
	p, err := e.client.GetProject(ctx, k, id)
	if err != nil {
		return apiError(ctx, err)
	}
	// The expected time is the tool's (from the project's type), scaled
	// to the emulator's speed, and the clock starts at the project's
	// creation, not when this command started.
	tool := toolForType(catalogOf(cmd), k, p.Type)
	var expected time.Duration
	if op := catalogOf(cmd).Lookup(string(tool)); op != nil {
		expected = op.P50
	}
	if expected <= 0 {
		expected = magichour.DefaultExpectedImage
		switch k {
		case magichour.KindVideo:
			expected = magichour.DefaultExpectedVideo
		case magichour.KindAudio:
			expected = magichour.DefaultExpectedAudio
		}
	}
	d := newDisplay(e, k, scaled(expected, e.scale))
	if !p.Status.Terminal() {
		d.startWaitAt(p.CreatedAt)
		d.statusChanged(p)
		opts := append(e.waitOptions(tool, d.statusChanged), magichour.WithStartedAt(p.CreatedAt))
		p2, werr := e.client.Wait(ctx, k, id, opts...)
		if p2 != nil {
			p = p2
		}
		if werr != nil && ctx.Err() != nil {
			if last := e.lastStatus(k, id); last != nil {
				p = last
				d.setStatus(last)
			}
		}
		if werr != nil && p.Err() == nil {
			d.close()
			return e.finish(ctx, newResult(tool, k, nil, p, nil), nil, werr)
		}
	}
	d.finishStatus()
	var files []magichour.DownloadedFile
	if download && p.Status == magichour.StatusComplete {
		files, err = e.client.Download(ctx, p, dir, e.downloadOptions(d)...)
		d.close()
		if err != nil {
			return e.finish(ctx, newResult(tool, k, nil, p, files), files, err)
		}
	}
	d.close()
	return e.finish(ctx, newResult(tool, k, nil, p, files), files, p.Err())
}
