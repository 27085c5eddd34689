package magichour

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// AccountService reads the account behind the API key.
type AccountService struct{ c *Client }

// Get returns the account: tier, credit balance and subscription
// (GET /v1/account). Transient failures are retried.
func (s *AccountService) Get(ctx context.Context) (*Account, error) {
	var a Account
	if err := s.c.doJSON(ctx, request{method: http.MethodGet, path: "/v1/account"}, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// SavedItemsService lists saved items (GET /v1/saved-items). Each asset's
// FilePath ("saved-items/...") is durable and can be passed to any input
// field of the same media without uploading again.
type SavedItemsService struct{ c *Client }

// SavedItemsParams filters and pages GET /v1/saved-items. Zero values are
// left out.
type SavedItemsParams struct {
	// Type is character, reference, voice, moodboard or brand_kit.
	Type string
	// Limit is the page size, 1 to 100 (the API's default is 20).
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// SavedItemsPage is one page of saved items; NextCursor is nil on the last.
type SavedItemsPage struct {
	Items      []SavedItem `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

// ListPage fetches one page.
func (s *SavedItemsService) ListPage(ctx context.Context, p SavedItemsParams) (*SavedItemsPage, error) {
	if p.Limit < 0 || p.Limit > 100 {
		return nil, fmt.Errorf("%w: saved items limit %d is not within 1..100", ErrInvalidRequest, p.Limit)
	}
	q := url.Values{}
	if p.Type != "" {
		q.Set("type", p.Type)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	path := "/v1/saved-items"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var page SavedItemsPage
	if err := s.c.doJSON(ctx, request{method: http.MethodGet, path: path}, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// List iterates over every saved item matching p, fetching pages as it
// goes by following next_cursor. It stops at the first error, which it
// yields with a zero item.
func (s *SavedItemsService) List(ctx context.Context, p SavedItemsParams) iter.Seq2[SavedItem, error] {
	return func(yield func(SavedItem, error) bool) {
		for {
			page, err := s.ListPage(ctx, p)
			if err != nil {
				yield(SavedItem{}, err)
				return
			}
			for _, it := range page.Items {
				if !yield(it, nil) {
					return
				}
			}
			if page.NextCursor == nil || *page.NextCursor == "" || *page.NextCursor == p.Cursor {
				return
			}
			p.Cursor = *page.NextCursor
		}
	}
}
