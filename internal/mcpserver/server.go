// Package mcpserver is hourglass's Model Context Protocol server: one tool
// per Magic Hour tool of the catalog, plus job tools (get, wait, list,
// cancel, delete), uploads, face detection, account and estimates, all
// over an hourglass gateway's native API. Creates are idempotent (a key
// derived from the arguments when the agent gives none), waits are
// resumable, outputs are the gateway's stored copies.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Options configures a Server.
type Options struct {
	// API is the gateway the server works through. Required.
	API API
	// Key is the tenant key used when a request carries none (stdio).
	// Over HTTP each request's bearer key is used instead.
	Key string
	// Operations are the create tools offered (default catalog.Creates()).
	Operations []*catalog.Operation
	// Version is reported to clients.
	Version string
	// Note is added to the instructions: which gateway and upstream are
	// in use (for example that the upstream is the embedded emulator).
	Note string
	// EmbedMaxBytes caps the images and audio embedded in one result
	// (default 1 MiB; negative: embed nothing).
	EmbedMaxBytes int64
	// MaxWait caps wait_seconds (default 1h).
	MaxWait time.Duration
	// AllowLocalFiles lets upload_file read a path on this machine.
	AllowLocalFiles bool
	// Heartbeat is how often a wait reports progress when nothing happens
	// (default 5s), so clients that extend timeouts on progress keep waiting.
	Heartbeat time.Duration
	Logger    *slog.Logger
}

// Server is an MCP server over an hourglass gateway.
type Server struct {
	o   Options
	mcp *mcp.Server
	ops map[string]*catalog.Operation // MCP tool name -> operation
}

// New builds a Server with every tool and resource registered.
func New(o Options) (*Server, error) {
	if o.API == nil {
		return nil, errors.New("mcpserver: Options.API is required")
	}
	if o.Operations == nil {
		o.Operations = catalog.Creates()
	}
	if o.EmbedMaxBytes == 0 {
		o.EmbedMaxBytes = 1 << 20
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Hour
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	s := &Server{o: o, ops: map[string]*catalog.Operation{}}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "hourglass", Title: "hourglass (Magic Hour)", Version: o.Version},
		&mcp.ServerOptions{Instructions: s.instructions(), Logger: o.Logger})
	s.addTools()
	s.addResources()
	return s, nil
}

// MCP returns the underlying SDK server (for in-memory transports).
func (s *Server) MCP() *mcp.Server { return s.mcp }

// RunStdio serves one client over standard input and output until it
// disconnects or ctx ends.
func (s *Server) RunStdio(ctx context.Context) error {
	return s.mcp.Run(ctx, &mcp.StdioTransport{})
}

// Handler serves the streamable HTTP transport. Every request must carry
// "Authorization: Bearer <tenant key>", checked against the gateway before
// anything else happens; a missing or wrong key gets 401.
func (s *Server) Handler() http.Handler {
	// Idle sessions are closed after a while so clients that vanish do not
	// hold memory; a client whose session is gone starts a new one.
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp },
		&mcp.StreamableHTTPOptions{Logger: s.o.Logger, SessionTimeout: 30 * time.Minute})
	verify := func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		a, err := s.o.API.Account(ctx, token, false)
		if errors.Is(err, ErrUnauthorized) {
			return nil, fmt.Errorf("%w: the gateway refused the key", auth.ErrInvalidToken)
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			return nil, fmt.Errorf("%w: %s (use a tenant key)", auth.ErrInvalidToken, ae.Message)
		}
		if err != nil {
			return nil, err
		}
		// UserID ties a session to its tenant, so another key cannot use it.
		return &auth.TokenInfo{UserID: a.ID, Expiration: time.Now().Add(24 * time.Hour), Extra: map[string]any{"key": token}}, nil
	}
	return auth.RequireBearerToken(verify, nil)(h)
}

// key is the tenant key a request acts with.
func (s *Server) key(extra *mcp.RequestExtra) string {
	if extra != nil && extra.TokenInfo != nil {
		if k, ok := extra.TokenInfo.Extra["key"].(string); ok && k != "" {
			return k
		}
	}
	return s.o.Key
}

func (s *Server) instructions() string {
	var b strings.Builder
	b.WriteString(`hourglass: Magic Hour's generative media API (images, video, audio) through a durable job gateway.
- Each Magic Hour tool is a tool of its own (ai_image_generator, text_to_video, ...). A create returns at once with job_id, status and the expected duration; pass wait_seconds to wait for it in the same call.
- Creates never pay twice: a call with the same arguments returns the same job (its idempotency key is derived from the arguments when you give none). To make another job with identical arguments, pass a new idempotency_key.
- wait_for_job waits for a job and is resumable: when it times out it says so, the job keeps running, and calling it again continues. It never creates anything. get_job reads a job without waiting.
- Input files: call upload_file (a local path on the server's machine, or base64 content) and put the file_path it returns into the tool's file field; or pass an http(s) URL.
- Outputs are stored by the gateway: their URLs do not expire (send the tenant key as a bearer token), results give size and sha256, small images and audio are embedded, and resources hourglass://jobs/{id}/outputs/{n} read them.
- estimate tells what a request would cost without creating it; account shows the credit budget. Errors name the field and how to fix it.`)
	if s.o.Note != "" {
		b.WriteString("\n- ")
		b.WriteString(s.o.Note)
	}
	return b.String()
}

// toolName is the MCP name of a catalog tool: the API name with
// underscores.
func toolName(op *catalog.Operation) string { return strings.ReplaceAll(op.Name, "-", "_") }
