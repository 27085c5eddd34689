package magichour

// FilesService uploads input files.
type FilesService struct{ c *Client }
