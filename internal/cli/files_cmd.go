package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

func newFilesCmd() *cobra.Command {
	files := &cobra.Command{
		Use:   "files",
		Short: "Upload input files to Magic Hour storage",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	upload := &cobra.Command{
		Use:   "upload PATH...",
		Short: "Upload local files; prints each api-assets/… path to pass to any tool",
		Example: "  hourglass files upload photo.png clip.mp4\n" +
			"  hourglass video from-image --image \"$(hourglass files upload photo.png)\" --end 5",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			all := []string{"image", "video", "audio"}
			for _, p := range args {
				if _, err := checkLocal(p, all); err != nil {
					return usageErrorf("%v", err)
				}
			}
			e, ctx, done, err := start(cmd)
			if err != nil {
				return err
			}
			defer done()
			d := newDisplay(e, "", 0)
			d.uploading(args)
			paths, err := e.client.Files.UploadMany(ctx, args, magichour.WithUploadProgress(d.uploadBytes))
			if err != nil {
				d.close()
				return apiError(ctx, err)
			}
			m := map[string]string{}
			for i, p := range args {
				m[p] = paths[i]
			}
			d.uploaded(m)
			d.close()
			if e.json {
				type item struct {
					Path     string `json:"path"`
					FilePath string `json:"file_path"`
				}
				out := struct {
					Files    []item `json:"files"`
					Emulator bool   `json:"emulator,omitempty"`
				}{Emulator: e.emulated}
				for i, p := range args {
					out.Files = append(out.Files, item{p, paths[i]})
				}
				return json.NewEncoder(e.stdout).Encode(out)
			}
			for _, fp := range paths {
				fmt.Fprintln(e.stdout, fp)
			}
			return nil
		},
	}
	files.AddCommand(upload)
	return files
}

func newFacesCmd() *cobra.Command {
	faces := &cobra.Command{
		Use:   "faces",
		Short: "Find the faces in an image or video (for multi-face swaps)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var confidence float64
	detect := &cobra.Command{
		Use:   "detect PATH|URL",
		Short: "Detect faces; prints each face's path to use as --face-mapping ORIGINAL=NEW",
		Example: "  hourglass faces detect group.png\n" +
			"  hourglass image face-swap --target group.png --face-mapping ORIGINAL=me.png",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			media := catalog.Lookup("face-detection").Files[0].Media
			local := !isRemoteRef(ref)
			if local {
				if _, err := checkLocal(ref, media); err != nil {
					return usageErrorf("%v", err)
				}
			}
			if confidence < 0 || confidence > 1 {
				return usageErrorf("invalid --confidence %v: must be between 0 and 1", confidence)
			}
			e, ctx, done, err := start(cmd)
			if err != nil {
				return err
			}
			defer done()
			d := newDisplay(e, "", 0)
			if local {
				d.uploading([]string{ref})
				fp, err := e.client.Files.Upload(ctx, ref, magichour.WithUploadProgress(d.uploadBytes))
				if err != nil {
					d.close()
					return apiError(ctx, err)
				}
				d.uploaded(map[string]string{ref: fp})
				ref = fp
			}
			params := magichour.FaceDetectionCreateParams{Assets: magichour.FaceDetectionCreateParamsAssets{TargetFilePath: ref}}
			if cmd.Flags().Changed("confidence") {
				params.ConfidenceScore = &confidence
			}
			cr, err := e.client.FaceDetection.Create(ctx, params)
			if err != nil {
				d.close()
				return apiError(ctx, err)
			}
			d.startWait()
			fd, err := pollFaces(ctx, e, cr.ID, d)
			d.close()
			if err != nil {
				return apiError(ctx, err)
			}
			if e.json {
				out := struct {
					ID             string           `json:"id"`
					Status         string           `json:"status"`
					CreditsCharged int              `json:"credits_charged"`
					Faces          []magichour.Face `json:"faces"`
					Emulator       bool             `json:"emulator,omitempty"`
				}{fd.ID, string(fd.Status), fd.CreditsCharged, fd.Faces, e.emulated}
				if out.Faces == nil {
					out.Faces = []magichour.Face{}
				}
				if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "%d face(s) in %s (detection %s)\n", len(fd.Faces), args[0], fd.ID)
				for i, f := range fd.Faces {
					fmt.Fprintf(e.stdout, "  face %d: %s\n", i, f.Path)
				}
			}
			if fd.Status == magichour.FaceDetectionError {
				return &exitError{code: ExitJob, msg: "face detection " + fd.ID + " failed"}
			}
			return nil
		},
	}
	detect.Flags().Float64Var(&confidence, "confidence", 0.5, "confidence threshold, 0 to 1")
	faces.AddCommand(detect)
	return faces
}

// pollFaces polls a face detection until it is complete or failed.
func pollFaces(ctx context.Context, e *env, id string, d *display) (*magichour.FaceDetection, error) {
	interval := scaled(500*time.Millisecond, e.scale/10)
	var last magichour.FaceDetectionStatus
	for {
		fd, err := e.client.FaceDetection.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if fd.Status != last {
			last = fd.Status
			d.statusChanged(&magichour.Project{ID: id, Status: magichour.Status(fd.Status)})
		}
		if fd.Status.Terminal() {
			return fd, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}
