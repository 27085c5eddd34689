package media

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
)

// ImageFormats lists the format names accepted by Image.
var ImageFormats = []string{"png", "jpg", "jpeg", "gif"}

// Image returns an encoded image of exactly w×h pixels in format "png",
// "jpg"/"jpeg" or "gif" (case-insensitive, a leading dot is ignored). The
// picture is a linear gradient between two colours whose hues, direction and
// orientation derive from seed; the same arguments always give the same
// bytes. w and h must be in [1, MaxDimension]. The result decodes with
// image.Decode once the matching image/* package is imported.
//
// The whole raster is held in memory while encoding (4 bytes per pixel for
// PNG, 1.5 for JPEG, 1 for GIF).
func Image(format string, w, h int, seed int64) ([]byte, error) {
	f := normFormat(format)
	switch f {
	case "png", "jpg", "jpeg", "gif":
	default:
		return nil, fmt.Errorf("%w: image format %q (valid: png, jpg, jpeg, gif)", ErrFormat, format)
	}
	if err := checkSize(w, h); err != nil {
		return nil, err
	}
	g := newGradient(w, h, seed)
	var buf bytes.Buffer
	var err error
	switch f {
	case "png":
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		err = enc.Encode(&buf, g.nrgba())
	case "jpg", "jpeg":
		err = jpeg.Encode(&buf, g.ycbcr(), &jpeg.Options{Quality: 90})
	case "gif":
		err = gif.Encode(&buf, g.paletted(), &gif.Options{NumColors: 256})
	}
	if err != nil {
		return nil, fmt.Errorf("media: encode %s: %w", f, err)
	}
	return buf.Bytes(), nil
}

// gradient describes a seed-derived two-colour linear gradient using only
// integer arithmetic, so its pixels are identical on every platform.
type gradient struct {
	w, h   int
	c0, c1 color.NRGBA
	a, b   int // direction weights for x and y, a+b > 0
	flipX  bool
	flipY  bool
}

func newGradient(w, h int, seed int64) gradient {
	k := seedKey(seed)
	hue := int(k % 360)
	g := gradient{
		w:     w,
		h:     h,
		c0:    hsv(hue, 200, 245),
		c1:    hsv((hue+100+int(k>>9)%120)%360, 220, 110),
		a:     int(k>>20) % 17,
		b:     int(k>>28) % 17,
		flipX: k>>40&1 == 1,
		flipY: k>>41&1 == 1,
	}
	if g.a+g.b == 0 {
		g.a, g.b = 1, 1
	}
	return g
}

// t returns the gradient position of pixel (x, y) in [0, 65535].
func (g gradient) t(x, y int) int {
	u := x * 65535 / max(g.w-1, 1)
	v := y * 65535 / max(g.h-1, 1)
	if g.flipX {
		u = 65535 - u
	}
	if g.flipY {
		v = 65535 - v
	}
	return (g.a*u + g.b*v) / (g.a + g.b)
}

func lerp8(p, q uint8, t int) uint8 {
	return uint8((int(p)*(65535-t) + int(q)*t + 32767) / 65535)
}

func (g gradient) at(x, y int) color.NRGBA {
	t := g.t(x, y)
	return color.NRGBA{lerp8(g.c0.R, g.c1.R, t), lerp8(g.c0.G, g.c1.G, t), lerp8(g.c0.B, g.c1.B, t), 255}
}

func (g gradient) nrgba() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, g.w, g.h))
	for y := 0; y < g.h; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+4*g.w]
		for x := 0; x < g.w; x++ {
			c := g.at(x, y)
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = c.R, c.G, c.B, c.A
		}
	}
	return m
}

func (g gradient) ycbcr() *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, g.w, g.h), image.YCbCrSubsampleRatio420)
	for y := 0; y < g.h; y++ {
		for x := 0; x < g.w; x++ {
			c := g.at(x, y)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			m.Y[m.YOffset(x, y)] = yy
			if x%2 == 0 && y%2 == 0 {
				ci := m.COffset(x, y)
				m.Cb[ci], m.Cr[ci] = cb, cr
			}
		}
	}
	return m
}

func (g gradient) paletted() *image.Paletted {
	pal := make(color.Palette, 256)
	for i := range pal {
		t := i * 65535 / 255
		pal[i] = color.NRGBA{lerp8(g.c0.R, g.c1.R, t), lerp8(g.c0.G, g.c1.G, t), lerp8(g.c0.B, g.c1.B, t), 255}
	}
	m := image.NewPaletted(image.Rect(0, 0, g.w, g.h), pal)
	for y := 0; y < g.h; y++ {
		row := m.Pix[y*m.Stride : y*m.Stride+g.w]
		for x := range row {
			row[x] = uint8((g.t(x, y)*255 + 32767) / 65535)
		}
	}
	return m
}

// hsv converts hue in [0,360), saturation and value in [0,255] to an opaque
// colour with integer arithmetic.
func hsv(h, s, v int) color.NRGBA {
	h %= 360
	region := h / 60
	rem := (h % 60) * 255 / 60
	p := v * (255 - s) / 255
	q := v * (255 - s*rem/255) / 255
	t := v * (255 - s*(255-rem)/255) / 255
	var r, g, b int
	switch region {
	case 0:
		r, g, b = v, t, p
	case 1:
		r, g, b = q, v, p
	case 2:
		r, g, b = p, v, t
	case 3:
		r, g, b = p, q, v
	case 4:
		r, g, b = t, p, v
	default:
		r, g, b = v, p, q
	}
	return color.NRGBA{uint8(r), uint8(g), uint8(b), 255}
}
