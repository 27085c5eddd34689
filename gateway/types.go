package gateway

import "github.com/hourglasshq/hourglass/gateway/job"

// The domain types live in package job; these names keep the gateway's
// API (and its callers) unchanged.
type (
	Status          = job.Status
	Tenant          = job.Tenant
	Job             = job.Job
	Output          = job.Output
	Event           = job.Event
	Upload          = job.Upload
	Callback        = job.Callback
	CallbackAttempt = job.CallbackAttempt
)

// Job statuses (see package job).
const (
	StatusPending              = job.StatusPending
	StatusCreating             = job.StatusCreating
	StatusSubmitted            = job.StatusSubmitted
	StatusQueued               = job.StatusQueued
	StatusRendering            = job.StatusRendering
	StatusStoring              = job.StatusStoring
	StatusStored               = job.StatusStored
	StatusError                = job.StatusError
	StatusCanceled             = job.StatusCanceled
	StatusCreateOutcomeUnknown = job.StatusCreateOutcomeUnknown
	StatusDeleted              = job.StatusDeleted
)

// Callback statuses (see package job).
const (
	CallbackPending   = job.CallbackPending
	CallbackDelivered = job.CallbackDelivered
	CallbackFailed    = job.CallbackFailed
)
