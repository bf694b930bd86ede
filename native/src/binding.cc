// Module entry: starts the libvirt event loop, registers classes/constants.
#include "common.h"

namespace lv {

AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// Exported by name; values come from the headers, so they cannot drift.
#define LV(name) {#name, name}
const struct {
  const char* name;
  int value;
} kConstants[] = {
    // virErrorNumber: the codes a driver is likely to branch on.
    LV(VIR_ERR_OK), LV(VIR_ERR_INTERNAL_ERROR), LV(VIR_ERR_NO_MEMORY),
    LV(VIR_ERR_NO_SUPPORT), LV(VIR_ERR_NO_CONNECT), LV(VIR_ERR_INVALID_CONN),
    LV(VIR_ERR_INVALID_DOMAIN), LV(VIR_ERR_INVALID_ARG),
    LV(VIR_ERR_OPERATION_FAILED), LV(VIR_ERR_XML_ERROR), LV(VIR_ERR_DOM_EXIST),
    LV(VIR_ERR_OPERATION_DENIED), LV(VIR_ERR_XML_DETAIL),
    LV(VIR_ERR_SYSTEM_ERROR), LV(VIR_ERR_RPC), LV(VIR_ERR_NO_DOMAIN),
    LV(VIR_ERR_AUTH_FAILED), LV(VIR_ERR_OPERATION_INVALID),
    LV(VIR_ERR_CONFIG_UNSUPPORTED), LV(VIR_ERR_OPERATION_TIMEOUT),
    LV(VIR_ERR_ARGUMENT_UNSUPPORTED), LV(VIR_ERR_OPERATION_ABORTED),
    LV(VIR_ERR_OPERATION_UNSUPPORTED), LV(VIR_ERR_AGENT_UNRESPONSIVE),
    LV(VIR_ERR_RESOURCE_BUSY), LV(VIR_ERR_ACCESS_DENIED),
    LV(VIR_ERR_XML_INVALID_SCHEMA), LV(VIR_ERR_AUTH_UNAVAILABLE),
    LV(VIR_ERR_MULTIPLE_DOMAINS),
    // virErrorDomain: where an error came from.
    LV(VIR_FROM_NONE), LV(VIR_FROM_XML), LV(VIR_FROM_DOM), LV(VIR_FROM_RPC),
    LV(VIR_FROM_CONF), LV(VIR_FROM_QEMU), LV(VIR_FROM_REMOTE),
    LV(VIR_FROM_DOMAIN), LV(VIR_FROM_SECURITY), LV(VIR_FROM_EVENT),
    LV(VIR_FROM_LOCKING), LV(VIR_FROM_CAPABILITIES), LV(VIR_FROM_URI),
    LV(VIR_FROM_AUTH), LV(VIR_FROM_CGROUP), LV(VIR_FROM_ACCESS),
    LV(VIR_FROM_THREAD),
    // virErrorLevel
    LV(VIR_ERR_NONE), LV(VIR_ERR_WARNING), LV(VIR_ERR_ERROR),
    // virDomainState
    LV(VIR_DOMAIN_NOSTATE), LV(VIR_DOMAIN_RUNNING), LV(VIR_DOMAIN_BLOCKED),
    LV(VIR_DOMAIN_PAUSED), LV(VIR_DOMAIN_SHUTDOWN), LV(VIR_DOMAIN_SHUTOFF),
    LV(VIR_DOMAIN_CRASHED), LV(VIR_DOMAIN_PMSUSPENDED),
    // virDomainCreateFlags
    LV(VIR_DOMAIN_NONE), LV(VIR_DOMAIN_START_PAUSED),
    LV(VIR_DOMAIN_START_AUTODESTROY), LV(VIR_DOMAIN_START_BYPASS_CACHE),
    LV(VIR_DOMAIN_START_FORCE_BOOT), LV(VIR_DOMAIN_START_VALIDATE),
    // virDomainUndefineFlagsValues
    LV(VIR_DOMAIN_UNDEFINE_MANAGED_SAVE),
    LV(VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA), LV(VIR_DOMAIN_UNDEFINE_NVRAM),
    LV(VIR_DOMAIN_UNDEFINE_KEEP_NVRAM),
    LV(VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA), LV(VIR_DOMAIN_UNDEFINE_TPM),
    LV(VIR_DOMAIN_UNDEFINE_KEEP_TPM),
    // virDomainDestroyFlagsValues
    LV(VIR_DOMAIN_DESTROY_DEFAULT), LV(VIR_DOMAIN_DESTROY_GRACEFUL),
    // virDomainXMLFlags
    LV(VIR_DOMAIN_XML_SECURE), LV(VIR_DOMAIN_XML_INACTIVE),
    LV(VIR_DOMAIN_XML_UPDATE_CPU), LV(VIR_DOMAIN_XML_MIGRATABLE),
    // virConnectListAllDomainsFlags
    LV(VIR_CONNECT_LIST_DOMAINS_ACTIVE), LV(VIR_CONNECT_LIST_DOMAINS_INACTIVE),
    LV(VIR_CONNECT_LIST_DOMAINS_PERSISTENT),
    LV(VIR_CONNECT_LIST_DOMAINS_TRANSIENT),
    LV(VIR_CONNECT_LIST_DOMAINS_RUNNING), LV(VIR_CONNECT_LIST_DOMAINS_PAUSED),
    LV(VIR_CONNECT_LIST_DOMAINS_SHUTOFF),
    // virDomainEventType (lifecycle)
    LV(VIR_DOMAIN_EVENT_DEFINED), LV(VIR_DOMAIN_EVENT_UNDEFINED),
    LV(VIR_DOMAIN_EVENT_STARTED), LV(VIR_DOMAIN_EVENT_SUSPENDED),
    LV(VIR_DOMAIN_EVENT_RESUMED), LV(VIR_DOMAIN_EVENT_STOPPED),
    LV(VIR_DOMAIN_EVENT_SHUTDOWN), LV(VIR_DOMAIN_EVENT_PMSUSPENDED),
    LV(VIR_DOMAIN_EVENT_CRASHED),
    // virConnectCloseReason
    LV(VIR_CONNECT_CLOSE_REASON_ERROR), LV(VIR_CONNECT_CLOSE_REASON_EOF),
    LV(VIR_CONNECT_CLOSE_REASON_KEEPALIVE), LV(VIR_CONNECT_CLOSE_REASON_CLIENT),
};
#undef LV

void ExportConstants(Napi::Env env, Napi::Object exports) {
  for (const auto& c : kConstants)
    exports.Set(c.name, Napi::Number::New(env, c.value));
}

}  // namespace lv

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace lv;
  if (!StartEventLoop())  // once per process, before any connection opens
    throw Napi::Error::New(env, "libvirt: virEventRegisterDefaultImpl failed");
  env.SetInstanceData(new AddonData());  // deleted by Node at env teardown
  exports.Set("Connection", Connection::Init(env));
  exports.Set("Domain", Domain::Init(env));
  exports.Set("setErrorClass", Napi::Function::New<SetErrorClass>(env));
  ExportConstants(env, exports);
  return exports;
}

NODE_API_MODULE(libvirt_binding, Init)
