package media

// A minimal H.264 (ISO/IEC 14496-10) Baseline-profile encoder for a still
// picture.
//
// The IDR picture is one CAVLC I slice in which every macroblock is
// I_16x16 with DC intra prediction and at most one coded coefficient per
// block: the DC of the Intra16x16DCLevel block (and, in the first macroblock
// only, of the two chroma DC blocks). DC prediction of a flat neighbourhood
// is flat, and a lone DC coefficient adds a flat residual, so every
// macroblock reconstructs to a flat square whose luma the encoder picks
// (closed loop, with the decoder's exact integer arithmetic) to follow a
// gradient; chroma is set once in the first macroblock and propagates
// through prediction. The in-loop deblocking filter then softens the steps
// between macroblocks. Later pictures are P slices made of a single
// mb_skip_run over all macroblocks, which repeat the reference exactly.

// bitWriter accumulates an RBSP (raw byte sequence payload) MSB first.
type bitWriter struct {
	buf   []byte
	cur   byte
	nbits uint // bits used in cur
}

func (w *bitWriter) u(n uint, v uint64) {
	for i := int(n) - 1; i >= 0; i-- {
		w.cur = w.cur<<1 | byte(v>>uint(i)&1)
		w.nbits++
		if w.nbits == 8 {
			w.buf = append(w.buf, w.cur)
			w.cur, w.nbits = 0, 0
		}
	}
}

func (w *bitWriter) flag(b bool) {
	if b {
		w.u(1, 1)
	} else {
		w.u(1, 0)
	}
}

// ue writes an unsigned Exp-Golomb code.
func (w *bitWriter) ue(v uint64) {
	x := v + 1
	n := uint(0)
	for t := x; t > 1; t >>= 1 {
		n++
	}
	w.u(n, 0)
	w.u(n+1, x)
}

// se writes a signed Exp-Golomb code.
func (w *bitWriter) se(v int64) {
	if v > 0 {
		w.ue(uint64(2*v - 1))
	} else {
		w.ue(uint64(-2 * v))
	}
}

// trailing writes rbsp_trailing_bits and returns the RBSP.
func (w *bitWriter) trailing() []byte {
	w.u(1, 1)
	for w.nbits != 0 {
		w.u(1, 0)
	}
	return w.buf
}

// nal wraps an RBSP in a NAL unit header and inserts emulation prevention
// bytes (no start code: MP4 uses length prefixes).
func nal(refIdc, typ byte, rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/64+2)
	out = append(out, refIdc<<5|typ)
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

const (
	nalSlice = 1
	nalIDR   = 5
	nalSPS   = 7
	nalPPS   = 8

	log2MaxFrameNum = 4
	sliceQP         = 24 // picture QP: pic_init_qp_minus26 = -2
)

// h264Params holds the geometry of an encoded stream.
type h264Params struct {
	w, h     int // output (cropped) size, even
	mbW, mbH int // size in macroblocks
	fps      int
}

func newH264Params(w, h, fps int) h264Params {
	w += w & 1 // 4:2:0 crops in units of 2 pixels
	h += h & 1
	return h264Params{w: w, h: h, mbW: (w + 15) / 16, mbH: (h + 15) / 16, fps: fps}
}

// levelIdc picks the lowest level whose frame-size and macroblock-rate
// limits admit the stream (Table A-1); oversized streams get level 6.2.
func (p h264Params) levelIdc() byte {
	levels := []struct {
		idc        byte
		maxMBPS    int
		maxFS      int
		maxDimMBs2 int // (max width or height in MBs)^2 = 8*MaxFS
	}{
		{10, 1485, 99, 0}, {11, 3000, 396, 0}, {12, 6000, 396, 0}, {13, 11880, 396, 0},
		{20, 11880, 396, 0}, {21, 19800, 792, 0}, {22, 20250, 1620, 0},
		{30, 40500, 1620, 0}, {31, 108000, 3600, 0}, {32, 216000, 5120, 0},
		{40, 245760, 8192, 0}, {41, 245760, 8192, 0}, {42, 522240, 8704, 0},
		{50, 589824, 22080, 0}, {51, 983040, 36864, 0}, {52, 2073600, 36864, 0},
		{60, 4177920, 139264, 0}, {61, 8355840, 139264, 0}, {62, 16711680, 139264, 0},
	}
	fs := p.mbW * p.mbH
	for _, l := range levels {
		if fs <= l.maxFS && fs*p.fps <= l.maxMBPS &&
			p.mbW*p.mbW <= 8*l.maxFS && p.mbH*p.mbH <= 8*l.maxFS {
			return l.idc
		}
	}
	return 62
}

// sps returns the sequence parameter set NAL unit.
func (p h264Params) sps() []byte {
	var w bitWriter
	w.u(8, 66)   // profile_idc: Baseline
	w.u(8, 0xc0) // constraint_set0_flag, constraint_set1_flag (Constrained Baseline)
	w.u(8, uint64(p.levelIdc()))
	w.ue(0)                   // seq_parameter_set_id
	w.ue(log2MaxFrameNum - 4) // log2_max_frame_num_minus4
	w.ue(2)                   // pic_order_cnt_type: output order = decoding order
	w.ue(1)                   // max_num_ref_frames
	w.flag(false)             // gaps_in_frame_num_value_allowed_flag
	w.ue(uint64(p.mbW - 1))   // pic_width_in_mbs_minus1
	w.ue(uint64(p.mbH - 1))   // pic_height_in_map_units_minus1
	w.flag(true)              // frame_mbs_only_flag
	w.flag(true)              // direct_8x8_inference_flag
	cropR, cropB := (16*p.mbW-p.w)/2, (16*p.mbH-p.h)/2
	if cropR != 0 || cropB != 0 {
		w.flag(true) // frame_cropping_flag
		w.ue(0)      // frame_crop_left_offset
		w.ue(uint64(cropR))
		w.ue(0) // frame_crop_top_offset
		w.ue(uint64(cropB))
	} else {
		w.flag(false)
	}
	w.flag(true)             // vui_parameters_present_flag
	w.flag(true)             // aspect_ratio_info_present_flag
	w.u(8, 1)                // aspect_ratio_idc: 1:1 (square pixels)
	w.flag(false)            // overscan_info_present_flag
	w.flag(false)            // video_signal_type_present_flag
	w.flag(false)            // chroma_loc_info_present_flag
	w.flag(true)             // timing_info_present_flag
	w.u(32, 1)               // num_units_in_tick
	w.u(32, uint64(2*p.fps)) // time_scale (two ticks per frame)
	w.flag(true)             // fixed_frame_rate_flag
	w.flag(false)            // nal_hrd_parameters_present_flag
	w.flag(false)            // vcl_hrd_parameters_present_flag
	w.flag(false)            // pic_struct_present_flag
	w.flag(true)             // bitstream_restriction_flag
	w.flag(true)             // motion_vectors_over_pic_boundaries_flag
	w.ue(0)                  // max_bytes_per_pic_denom
	w.ue(0)                  // max_bits_per_mb_denom
	w.ue(0)                  // log2_max_mv_length_horizontal
	w.ue(0)                  // log2_max_mv_length_vertical
	w.ue(0)                  // max_num_reorder_frames
	w.ue(1)                  // max_dec_frame_buffering
	return nal(3, nalSPS, w.trailing())
}

// pps returns the picture parameter set NAL unit.
func (p h264Params) pps() []byte {
	var w bitWriter
	w.ue(0)            // pic_parameter_set_id
	w.ue(0)            // seq_parameter_set_id
	w.flag(false)      // entropy_coding_mode_flag: CAVLC
	w.flag(false)      // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)            // num_slice_groups_minus1
	w.ue(0)            // num_ref_idx_l0_default_active_minus1
	w.ue(0)            // num_ref_idx_l1_default_active_minus1
	w.flag(false)      // weighted_pred_flag
	w.u(2, 0)          // weighted_bipred_idc
	w.se(sliceQP - 26) // pic_init_qp_minus26
	w.se(0)            // pic_init_qs_minus26
	w.se(0)            // chroma_qp_index_offset
	w.flag(false)      // deblocking_filter_control_present_flag
	w.flag(false)      // constrained_intra_pred_flag
	w.flag(false)      // redundant_pic_cnt_present_flag
	return nal(3, nalPPS, w.trailing())
}

// Residual reconstruction at sliceQP (8.5.10-8.5.12) for a block whose only
// non-zero coefficient is the DC of the DC transform, of level l: every
// sample of the macroblock (or chroma component) gets the same residual.
//
//	luma:   dcY = (l*LevelScale(qp%6) + 2^(5-qp/6)) >> (6-qp/6)   (qp < 36)
//	chroma: dcC = ((l*LevelScale(qpc%6)) << (qpc/6)) >> 5
//	then r = (dc + 32) >> 6 from the 4x4 inverse transform.
func lumaDCResidual(l int) int {
	const ls = 160 // LevelScale4x4(0,0,0) = 16 * 10 at qp%6 == 0
	const q6 = sliceQP / 6
	dc := (l*ls + (1 << (5 - q6))) >> (6 - q6)
	return (dc + 32) >> 6
}

func chromaDCResidual(l int) int {
	const ls = 160
	const q6 = sliceQP / 6 // QPc == QPy below 30
	dc := ((l * ls) << q6) >> 5
	return (dc + 32) >> 6
}

func clip255(v int) int { return min(max(v, 0), 255) }

// bestLevel finds the coefficient level whose reconstruction pred+res(l)
// is closest to target, preferring the smallest magnitude.
func bestLevel(pred, target int, res func(int) int, step int) (level, recon int) {
	est := (target - pred) * 64 / step
	bestErr := 1 << 30
	for l := est - 4; l <= est+4; l++ {
		r := clip255(pred + res(l))
		e := r - target
		if e < 0 {
			e = -e
		}
		if e < bestErr || (e == bestErr && abs(l) < abs(level)) {
			bestErr, level, recon = e, l, r
		}
	}
	return level, recon
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// writeDCBlock writes a CAVLC residual block whose only non-zero
// coefficient (if level != 0) is at scan position 0. chromaDC selects the
// nC == -1 coeff_token table (2x2 chroma DC); otherwise 0 <= nC < 2.
func writeDCBlock(w *bitWriter, level int, chromaDC bool) {
	switch {
	case level == 0:
		if chromaDC {
			w.u(2, 0b01) // TotalCoeff 0
		} else {
			w.u(1, 0b1)
		}
		return
	case level == 1 || level == -1:
		// TotalCoeff 1, TrailingOnes 1
		if chromaDC {
			w.u(1, 0b1)
		} else {
			w.u(2, 0b01)
		}
		w.flag(level < 0) // trailing_ones_sign_flag
	default:
		// TotalCoeff 1, TrailingOnes 0
		if chromaDC {
			w.u(6, 0b000111)
		} else {
			w.u(6, 0b000101)
		}
		// levelCode, less 2 because the first non-trailing-one level of a
		// block with TrailingOnes < 3 cannot be ±1. suffixLength is 0.
		var code int
		if level > 0 {
			code = 2*level - 2
		} else {
			code = -2*level - 1
		}
		code -= 2
		switch {
		case code < 14:
			w.u(uint(code), 0) // level_prefix
			w.u(1, 1)
		case code < 30:
			w.u(14, 0)
			w.u(1, 1)
			w.u(4, uint64(code-14))
		default:
			w.u(15, 0)
			w.u(1, 1)
			w.u(12, uint64(code-30))
		}
	}
	w.u(1, 1) // total_zeros = 0 (TotalCoeff 1, both tables)
}

// frameColors describes the still picture of a video.
type frameColors struct {
	y0, y1 int // luma at the two ends of the gradient
	cb, cr int
	diag   bool // gradient along the diagonal rather than horizontal
}

func newFrameColors(seed int64) frameColors {
	k := seedKey(seed) ^ 0x5bd1e995
	k = mix64(k)
	c := hsv(int(k%360), 190, 230)
	_, cb, cr := rgbToYCbCr(int(c.R), int(c.G), int(c.B))
	return frameColors{
		y0:   50 + int(k>>16)%30,
		y1:   170 + int(k>>24)%50,
		cb:   cb,
		cr:   cr,
		diag: k>>40&1 == 1,
	}
}

func rgbToYCbCr(r, g, b int) (y, cb, cr int) {
	// BT.601 limited to integer arithmetic.
	y = (66*r + 129*g + 25*b + 128) >> 8
	cb = (-38*r - 74*g + 112*b + 128) >> 8
	cr = (112*r - 94*g - 18*b + 128) >> 8
	return y + 16, cb + 128, cr + 128
}

// idrSlice returns the IDR picture's coded slice NAL unit.
func (p h264Params) idrSlice(fc frameColors) []byte {
	var w bitWriter
	w.buf = make([]byte, 0, p.mbW*p.mbH+64)
	// slice_header
	w.ue(0)                 // first_mb_in_slice
	w.ue(7)                 // slice_type: I (all slices of the picture)
	w.ue(0)                 // pic_parameter_set_id
	w.u(log2MaxFrameNum, 0) // frame_num
	w.ue(0)                 // idr_pic_id
	w.flag(false)           // no_output_of_prior_pics_flag
	w.flag(false)           // long_term_reference_flag
	w.se(0)                 // slice_qp_delta

	// Reconstructed (pre-deblocking) luma of the row above, per MB column.
	above := make([]int, p.mbW)
	span := max(p.mbW-1+p.mbH-1, 1)
	if !fc.diag {
		span = max(p.mbW-1, 1)
	}
	for my := 0; my < p.mbH; my++ {
		left := 0
		for mx := 0; mx < p.mbW; mx++ {
			// DC prediction from flat neighbours (8.3.3.3).
			var pred int
			switch {
			case mx > 0 && my > 0:
				pred = (above[mx] + left + 1) >> 1
			case mx > 0:
				pred = left
			case my > 0:
				pred = above[mx]
			default:
				pred = 128
			}
			pos := mx
			if fc.diag {
				pos = mx + my
			}
			target := fc.y0 + (fc.y1-fc.y0)*pos/span
			lvl, recon := bestLevel(pred, target, lumaDCResidual, 40)
			first := mx == 0 && my == 0
			// mb_type I_16x16_2_c_0: DC prediction, chroma cbp c, luma cbp 0.
			if first {
				w.ue(1 + 2 + 4*1)
			} else {
				w.ue(1 + 2)
			}
			w.ue(0) // intra_chroma_pred_mode: DC
			w.se(0) // mb_qp_delta
			writeDCBlock(&w, lvl, false)
			if first {
				cbL, _ := bestLevel(128, fc.cb, chromaDCResidual, 80)
				crL, _ := bestLevel(128, fc.cr, chromaDCResidual, 80)
				writeDCBlock(&w, cbL, true)
				writeDCBlock(&w, crL, true)
			}
			above[mx], left = recon, recon
		}
	}
	return nal(3, nalIDR, w.trailing())
}

// pSkipSlice returns a P picture that repeats its reference: one slice
// whose data is a single mb_skip_run over every macroblock.
func (p h264Params) pSkipSlice(frameNum int) []byte {
	var w bitWriter
	w.ue(0) // first_mb_in_slice
	w.ue(5) // slice_type: P (all slices of the picture)
	w.ue(0) // pic_parameter_set_id
	w.u(log2MaxFrameNum, uint64(frameNum)&(1<<log2MaxFrameNum-1))
	w.flag(false)               // num_ref_idx_active_override_flag
	w.flag(false)               // ref_pic_list_modification_flag_l0
	w.flag(false)               // adaptive_ref_pic_marking_mode_flag
	w.se(0)                     // slice_qp_delta
	w.ue(uint64(p.mbW * p.mbH)) // mb_skip_run
	return nal(2, nalSlice, w.trailing())
}
