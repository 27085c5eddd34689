package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	jobURIPrefix   = "hourglass://jobs/"
	maxResourceOut = 64 << 20 // largest output read through resources/read
)

// addResources registers the job and output resource templates and a
// resources/list that shows the caller's recent jobs (the SDK's list is
// static and shared by every client; jobs belong to a tenant).
func (s *Server) addResources() {
	s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{Name: "job", URITemplate: jobURIPrefix + "{id}", MIMEType: "application/json",
		Description: "A job: status, credits, outputs (as get_job returns it)."}, s.readJob)
	s.mcp.AddResourceTemplate(&mcp.ResourceTemplate{Name: "output", URITemplate: jobURIPrefix + "{id}/outputs/{n}",
		Description: "A stored output of a job (its bytes)."}, s.readJob)
	s.mcp.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method != "resources/list" {
				return next(ctx, method, req)
			}
			return s.listResources(ctx, s.key(req.GetExtra()))
		}
	})
}

func (s *Server) listResources(ctx context.Context, key string) (*mcp.ListResourcesResult, error) {
	l, err := s.o.API.Jobs(ctx, key, ListFilter{Limit: 20})
	if err != nil {
		return nil, fmt.Errorf("list recent jobs: %w", err)
	}
	res := &mcp.ListResourcesResult{Resources: []*mcp.Resource{}}
	for _, j := range l.Jobs {
		res.Resources = append(res.Resources, &mcp.Resource{URI: jobURIPrefix + j.ID, Name: j.ID, MIMEType: "application/json",
			Title:       fmt.Sprintf("%s %s (%s)", strings.ReplaceAll(j.Tool, "-", "_"), j.ID, j.Status),
			Description: fmt.Sprintf("%s job created %s, status %s", j.Tool, j.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), j.Status)})
	}
	return res, nil
}

func (s *Server) readJob(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	rest, ok := strings.CutPrefix(uri, jobURIPrefix)
	if !ok || rest == "" {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	key := s.key(req.Extra)
	id, outPart, isOut := strings.Cut(rest, "/outputs/")
	j, err := s.o.API.Job(ctx, key, id)
	if err != nil {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	if !isOut {
		b, _ := json.MarshalIndent(view(j, false), "", "  ")
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
	}
	n, err := strconv.Atoi(outPart)
	if err != nil || n < 0 || n >= len(j.Outputs) || !j.Outputs[n].Stored {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	data, err := s.readOutput(ctx, key, id, n, maxResourceOut)
	if err != nil {
		return nil, fmt.Errorf("read output %d of %s: %w", n, id, err)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: j.Outputs[n].ContentType, Blob: data}}}, nil
}
