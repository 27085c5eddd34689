// Package magichour is a production client for Magic Hour's AI media API
// (https://magichour.ai). It is unofficial.
//
// # Client
//
// Create one Client and share it; it is safe for concurrent use:
//
//	c, err := magichour.NewClient() // key from MAGIC_HOUR_API_KEY
//	c, err := magichour.NewClient(
//		magichour.WithAPIKey(key),
//		magichour.WithTimeout(30*time.Second),
//		magichour.WithRetry(magichour.RetryPolicy{MaxAttempts: 5, BaseDelay: time.Second, MaxDelay: time.Minute}),
//		magichour.WithLogger(slog.Default()),
//	)
//
// The key is sent only to the API base URL, never to pre-signed storage
// URLs, and never appears in errors, logs or when the client is printed.
//
// # Flow: upload, create, poll
//
// Every create endpoint answers at once with a project id; the work runs
// asynchronously and is read back with GetProject until its status is
// terminal (complete, error, canceled):
//
//	src, err := c.Files.Upload(ctx, "face.png") // "api-assets/..."
//	res, err := c.FaceSwapPhoto.Create(ctx, magichour.FaceSwapPhotoCreateParams{...})
//	p, err := c.Image.Get(ctx, res.ID) // p.Status, p.Downloads
//
// Each create tool has a typed service generated from the API spec
// (c.FaceSwap, c.AIImageGenerator, ...) with a params struct whose required
// fields are values and optional fields pointers (use Ptr). The untyped
// Client.Create takes a Tool and a params struct, a map or raw JSON.
//
// # Validation
//
// Create requests are checked locally against the API spec before anything
// is sent: a violation returns a *ValidationError listing every bad field
// (errors.Is(err, ErrInvalidRequest) holds). WithoutValidation turns it off.
//
// # Errors and retries
//
// Non-2xx answers are *APIError values that match the sentinels ErrInvalidRequest
// (400, 422), ErrUnauthorized (401), ErrPaymentRequired (402), ErrForbidden
// (403), ErrNotFound (404), ErrRateLimited (429) and ErrServer (5xx).
//
// GET and DELETE are retried on network errors, 429 (honouring Retry-After)
// and 5xx, with exponential backoff and full jitter, at most
// RetryPolicy.MaxAttempts times and never past the context. A create is
// retried only when no job can have been made: the connection was refused
// or failed before the request was written, or the API answered 429, or 502/503
// without a project id. When a create may have reached the server without an
// answer coming back (connection reset, timeout, 500, 504), the error matches
// ErrCreateOutcomeUnknown and the client does not resubmit: a job may exist
// and be charged, so check before creating again.
// The contract calls 500 a transient error: GET and DELETE retry it, but on a
// create the client cannot tell whether the job was made before the failure,
// so a 500 (or 504) comes back as an *OutcomeUnknownError wrapping the
// *APIError (ErrServer) instead of risking a duplicate, charged job.
//
// A project that ended in error is reported as a *JobError (ErrJobFailed),
// a canceled one as a *CanceledError (ErrCanceled); see Project.Err.
//
// # Uploads
//
// Files.Upload, UploadReader and UploadMany request pre-signed URLs from
// POST /v1/files/upload-urls (one call for many files) and stream each file
// with a PUT (constant memory, Content-Length set, retried on network and
// 5xx errors). The returned file path ("api-assets/...") goes in a create
// request's assets.
//
// # Face detection
//
// For multi-face swaps, FaceDetection.Create starts a detection and
// FaceDetection.Get reads its faces; each Face.Path is an original_face in
// face_mappings.
//
// # Testing
//
// The emulator package runs a stateful, spec-faithful Magic Hour API
// in-process, with injectable faults; point the client at it:
//
//	srv := emulator.NewServer(t, emulator.WithSpeed(1000))
//	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
package magichour

//go:generate go run ./gen
