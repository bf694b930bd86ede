// libvirt error -> LibvirtError conversion.
#include "common.h"

namespace lv {

ErrorInfo CaptureLastError() {
  ErrorInfo out;
  virErrorPtr err = virGetLastError();  // this thread's error, owned by libvirt
  if (err == nullptr) {
    out.message = "libvirt call failed without setting an error";
    return out;
  }
  out.code = err->code;
  out.domain = err->domain;
  out.level = err->level;
  out.message = err->message ? err->message : "unknown libvirt error";
  virResetLastError();
  return out;
}

ErrorInfo ClosedError() {
  ErrorInfo out;
  out.code = VIR_ERR_INVALID_CONN;  // what libvirt says for a dead handle
  out.message = "connection is closed";
  return out;
}

Napi::Value MakeError(Napi::Env env, const ErrorInfo& e) {
  Napi::FunctionReference& cls = Data(env).errorClass;
  if (!cls.IsEmpty()) {
    return cls.New({Napi::String::New(env, e.message),
                    Napi::Number::New(env, e.code),
                    Napi::Number::New(env, e.domain),
                    Napi::Number::New(env, e.level)});
  }
  // Binding loaded without index.js: same fields on a plain Error.
  Napi::Object err = Napi::Error::New(env, e.message).Value();
  err.Set("code", e.code);
  err.Set("domain", e.domain);
  err.Set("level", e.level);
  return err;
}

Napi::Value Rejected(Napi::Env env, const ErrorInfo& e) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(MakeError(env, e));
  return deferred.Promise();
}

void SetErrorClass(const Napi::CallbackInfo& info) {
  Data(info.Env()).errorClass = Napi::Persistent(FunctionArg(info, 0));
}

// libvirt's default handler prints every error to stderr; errors reach JS
// through the rejected promises instead.
void IgnoreError(void*, virErrorPtr) {}

}  // namespace lv
