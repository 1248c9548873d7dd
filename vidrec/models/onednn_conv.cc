// Channels-last convolutions on CPU by oneDNN, as XLA FFI handlers (built and registered by
// vidrec/models/conv_onednn.py).
//
// Layouts are vidrec's: x [N, *spatial, C], kernel [*k, C, O], y [N, *out, O] with 1, 2 or 3 spatial
// axes (oneDNN's nwc/nhwc/ndhwc and wio/hwio/dhwio). Attributes: strides, pad_lo, pad_hi (one per
// spatial axis) and any_layout: let the primitive choose its memory formats (blocked layouts; the
// operands are reordered to and from them) instead of computing on the channels-last buffers.
//
//   vidrec_onednn_conv_fwd          (x, w)  -> y
//   vidrec_onednn_conv_bwd_data     (dy, w) -> dx
//   vidrec_onednn_conv_bwd_weights  (x, dy) -> dw
//
// Operands are float32 or bfloat16 (all the same dtype). A bfloat16 convolution runs in bfloat16 where
// the CPU has a non-reference oneDNN implementation for it and in float32 otherwise (reorders convert);
// accumulation is float32 either way. vidrec_onednn_native_bf16() says whether this CPU has one (if not,
// the caller converts to float32 itself: XLA's fused converts are faster than oneDNN's generic reorders).

#include <cstdint>
#include <exception>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Dims = memory::dims;
using Span = ffi::Span<const int64_t>;

namespace {

enum class Kind { kFwd, kBwdData, kBwdWeights };

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& Stream() {  // one per calling thread: XLA may run independent custom calls concurrently
  thread_local dnnl::stream stream(Engine());
  return stream;
}

memory::format_tag DataTag(int nd) {
  const memory::format_tag tags[] = {memory::format_tag::nwc, memory::format_tag::nhwc,
                                     memory::format_tag::ndhwc};
  return tags[nd - 1];
}

memory::format_tag WeightTag(int nd) {
  const memory::format_tag tags[] = {memory::format_tag::wio, memory::format_tag::hwio,
                                     memory::format_tag::dhwio};
  return tags[nd - 1];
}

// oneDNN's logical dims of a channels-last array: [N, *S, C] -> {N, C, *S}; [*k, C, O] -> {O, C, *k}.
Dims DataDims(ffi::AnyBuffer::Dimensions d) {
  Dims out{d[0], d[d.size() - 1]};
  out.insert(out.end(), d.begin() + 1, d.end() - 1);
  return out;
}

Dims WeightDims(ffi::AnyBuffer::Dimensions d) {
  Dims out{d[d.size() - 1], d[d.size() - 2]};
  out.insert(out.end(), d.begin(), d.end() - 2);
  return out;
}

struct Problem {
  Dims x, w, y, strides, pad_lo, pad_hi, dilation;
  int nd;
};

// The primitive descriptor for `kind`, computing in `type` with channels-last memory or (any_layout)
// formats of the primitive's choosing. Throws dnnl::error when no implementation exists.
dnnl::primitive_desc MakePd(Kind kind, const Problem& p, memory::data_type type, bool any_layout) {
  auto md = [&](const Dims& dims, memory::format_tag tag) {
    return memory::desc(dims, type, any_layout ? memory::format_tag::any : tag);
  };
  const memory::desc x = md(p.x, DataTag(p.nd)), w = md(p.w, WeightTag(p.nd)), y = md(p.y, DataTag(p.nd));
  const auto alg = dnnl::algorithm::convolution_direct;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::convolution_forward::primitive_desc fwd(Engine(), dnnl::prop_kind::forward_training, alg, x, w, y,
                                                p.strides, p.dilation, p.pad_lo, p.pad_hi, attr);
  switch (kind) {
    case Kind::kFwd:
      return fwd;
    case Kind::kBwdData:
      return dnnl::convolution_backward_data::primitive_desc(Engine(), alg, x, w, y, p.strides, p.dilation,
                                                             p.pad_lo, p.pad_hi, fwd, attr);
    case Kind::kBwdWeights:
      return dnnl::convolution_backward_weights::primitive_desc(Engine(), alg, x, w, y, p.strides, p.dilation,
                                                                p.pad_lo, p.pad_hi, fwd, attr);
  }
  throw std::logic_error("unknown convolution kind");
}

// In the buffers' dtype when a non-reference implementation exists for it, else in float32.
dnnl::primitive_desc ChoosePd(Kind kind, const Problem& p, memory::data_type type, bool any_layout) {
  if (type != memory::data_type::f32) {
    try {
      dnnl::primitive_desc pd = MakePd(kind, p, type, any_layout);
      if (std::string(pd.impl_info_str()).rfind("ref", 0) != 0) return pd;
    } catch (const dnnl::error&) {
    }
  }
  return MakePd(kind, p, memory::data_type::f32, any_layout);
}

ffi::Error Run(Kind kind, ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> out, Span strides,
               Span pad_lo, Span pad_hi, bool any_layout) {
  const ffi::DataType dtype = a.element_type();
  if (b.element_type() != dtype || out->element_type() != dtype ||
      (dtype != ffi::DataType::F32 && dtype != ffi::DataType::BF16)) {
    return ffi::Error::InvalidArgument("onednn conv: operands must all be float32 or all bfloat16");
  }
  const size_t rank = a.dimensions().size();
  const int nd = static_cast<int>(rank) - 2;
  if (nd < 1 || nd > 3 || b.dimensions().size() != rank || out->dimensions().size() != rank ||
      strides.size() != static_cast<size_t>(nd) || pad_lo.size() != static_cast<size_t>(nd) ||
      pad_hi.size() != static_cast<size_t>(nd)) {
    return ffi::Error::InvalidArgument("onednn conv: 1 to 3 spatial axes, one stride and pad per axis");
  }
  // Which buffer is x, w, y: fwd (x, w) -> y; bwd_data (dy, w) -> dx; bwd_weights (x, dy) -> dw.
  const ffi::AnyBuffer::Dimensions xd = kind == Kind::kBwdData ? out->dimensions() : a.dimensions();
  const ffi::AnyBuffer::Dimensions wd = kind == Kind::kBwdWeights ? out->dimensions() : b.dimensions();
  const ffi::AnyBuffer::Dimensions yd =
      kind == Kind::kFwd ? out->dimensions() : kind == Kind::kBwdData ? a.dimensions() : b.dimensions();
  Problem p{DataDims(xd), WeightDims(wd), DataDims(yd), Dims(strides.begin(), strides.end()),
            Dims(pad_lo.begin(), pad_lo.end()), Dims(pad_hi.begin(), pad_hi.end()), Dims(nd, 0), nd};
  const memory::data_type type = dtype == ffi::DataType::F32 ? memory::data_type::f32 : memory::data_type::bf16;
  try {
    dnnl::primitive_desc pd = ChoosePd(kind, p, type, any_layout);
    const memory::desc user_x(p.x, type, DataTag(nd)), user_w(p.w, type, WeightTag(nd)),
        user_y(p.y, type, DataTag(nd));
    struct Operand {
      int arg;
      memory::desc user, want;
      void* data;
      bool is_output;
    };
    std::vector<Operand> ops;
    switch (kind) {
      case Kind::kFwd:
        ops = {{DNNL_ARG_SRC, user_x, pd.src_desc(), a.untyped_data(), false},
               {DNNL_ARG_WEIGHTS, user_w, pd.weights_desc(), b.untyped_data(), false},
               {DNNL_ARG_DST, user_y, pd.dst_desc(), out->untyped_data(), true}};
        break;
      case Kind::kBwdData:
        ops = {{DNNL_ARG_DIFF_DST, user_y, pd.diff_dst_desc(), a.untyped_data(), false},
               {DNNL_ARG_WEIGHTS, user_w, pd.weights_desc(), b.untyped_data(), false},
               {DNNL_ARG_DIFF_SRC, user_x, pd.diff_src_desc(), out->untyped_data(), true}};
        break;
      case Kind::kBwdWeights:
        ops = {{DNNL_ARG_SRC, user_x, pd.src_desc(), a.untyped_data(), false},
               {DNNL_ARG_DIFF_DST, user_y, pd.diff_dst_desc(), b.untyped_data(), false},
               {DNNL_ARG_DIFF_WEIGHTS, user_w, pd.diff_weights_desc(), out->untyped_data(), true}};
        break;
    }
    dnnl::engine& engine = Engine();
    dnnl::stream& stream = Stream();
    std::unordered_map<int, memory> args;
    std::vector<std::pair<memory, memory>> write_back;  // (primitive's output, user buffer)
    for (const Operand& op : ops) {
      memory user(op.user, engine, op.data);
      if (op.want == op.user) {
        args.emplace(op.arg, user);
        continue;
      }
      memory own(op.want, engine);
      if (op.is_output) {
        write_back.emplace_back(own, user);
      } else {
        dnnl::reorder(user, own).execute(stream, user, own);
      }
      args.emplace(op.arg, own);
    }
    memory scratchpad(pd.scratchpad_desc(), engine);  // per call: a cached primitive may run concurrently
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad);
    dnnl::primitive(pd).execute(stream, args);
    for (auto& [own, user] : write_back) dnnl::reorder(own, user).execute(stream, own, user);
    stream.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("onednn conv: ") + e.what());
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string("onednn conv: ") + e.what());
  }
  return ffi::Error::Success();
}

ffi::Error Fwd(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> y, Span strides, Span pad_lo,
               Span pad_hi, bool any_layout) {
  return Run(Kind::kFwd, x, w, y, strides, pad_lo, pad_hi, any_layout);
}

ffi::Error BwdData(ffi::AnyBuffer dy, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> dx, Span strides,
                   Span pad_lo, Span pad_hi, bool any_layout) {
  return Run(Kind::kBwdData, dy, w, dx, strides, pad_lo, pad_hi, any_layout);
}

ffi::Error BwdWeights(ffi::AnyBuffer x, ffi::AnyBuffer dy, ffi::Result<ffi::AnyBuffer> dw, Span strides,
                      Span pad_lo, Span pad_hi, bool any_layout) {
  return Run(Kind::kBwdWeights, x, dy, dw, strides, pad_lo, pad_hi, any_layout);
}

}  // namespace

extern "C" bool vidrec_onednn_native_bf16() {
  const Problem p{{1, 16, 4, 4, 4}, {16, 16, 3, 3, 3}, {1, 16, 4, 4, 4}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1},
                  {0, 0, 0}, 3};
  try {
    for (Kind kind : {Kind::kFwd, Kind::kBwdData, Kind::kBwdWeights}) {
      const std::string impl = MakePd(kind, p, memory::data_type::bf16, true).impl_info_str();
      if (impl.rfind("ref", 0) == 0) return false;
    }
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

#define VIDREC_ONEDNN_BINDING                                                                       \
  ffi::Ffi::Bind()                                                                                  \
      .Arg<ffi::AnyBuffer>()                                                                        \
      .Arg<ffi::AnyBuffer>()                                                                        \
      .Ret<ffi::AnyBuffer>()                                                                        \
      .Attr<Span>("strides")                                                                        \
      .Attr<Span>("pad_lo")                                                                         \
      .Attr<Span>("pad_hi")                                                                         \
      .Attr<bool>("any_layout")

XLA_FFI_DEFINE_HANDLER_SYMBOL(vidrec_onednn_conv_fwd, Fwd, VIDREC_ONEDNN_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(vidrec_onednn_conv_bwd_data, BwdData, VIDREC_ONEDNN_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(vidrec_onednn_conv_bwd_weights, BwdWeights, VIDREC_ONEDNN_BINDING);
