#include "services/common/commands/rpc_call.h"

namespace orchestrator::commands::internal {

const google::protobuf::MethodDescriptor* FindMethod(const char* service,
                                                     const google::protobuf::Descriptor* request,
                                                     const google::protobuf::Descriptor* response) {
  const auto* s = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  if (s == nullptr) return nullptr;
  for (int i = 0; i < s->method_count(); ++i) {
    const auto* m = s->method(i);
    if (m->input_type() == request && m->output_type() == response) return m;
  }
  return nullptr;
}

}  // namespace orchestrator::commands::internal
