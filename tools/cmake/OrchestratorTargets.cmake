# Helpers that keep every component's CMakeLists short and alike.

# orchestrator_library(<name> SOURCES ... DEPS ...)
# A static library for one layer of one component, aliased orchestrator::<name>.
function(orchestrator_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(orchestrator_${name} STATIC ${ARG_SOURCES})
  add_library(orchestrator::${name} ALIAS orchestrator_${name})
  target_include_directories(orchestrator_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(orchestrator_${name} PRIVATE ${ORCHESTRATOR_WARNINGS})
  target_link_libraries(orchestrator_${name} PUBLIC ${ARG_DEPS})
endfunction()

# orchestrator_component(<name> SOURCES component.cc DEPS ...)
# A component's registration (services/<name>/component.cc) as the library
# orchestrator::<name>_component; orchestratord links every one of them.
function(orchestrator_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  orchestrator_library(${name}_component SOURCES ${ARG_SOURCES}
                       DEPS ${ARG_DEPS} orchestrator::component absl::flags)
  set_property(GLOBAL APPEND PROPERTY ORCHESTRATOR_COMPONENT_LIBRARIES orchestrator::${name}_component)
endfunction()

# orchestrator_migrations(<name> SCHEMA <schema> DIR <dir>)
# Embeds <dir>/NNNN_*.sql into orchestrator::<name> as a MigrationSet, so a
# deployed binary carries its schema with it.
function(orchestrator_migrations name)
  cmake_parse_arguments(ARG "" "SCHEMA;DIR" "" ${ARGN})
  file(GLOB sql_files CONFIGURE_DEPENDS "${ARG_DIR}/[0-9][0-9][0-9][0-9]_*.sql")
  list(SORT sql_files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${name}_migrations.cc")
  # A ;-list would split the command line: pass the files comma-separated.
  string(REPLACE ";" "," files_arg "${sql_files}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSCHEMA=${ARG_SCHEMA} -DNAME=${name}
            "-DFILES=${files_arg}" -P ${PROJECT_SOURCE_DIR}/tools/cmake/EmbedMigrations.cmake
    DEPENDS ${sql_files} ${PROJECT_SOURCE_DIR}/tools/cmake/EmbedMigrations.cmake
    COMMENT "Embedding ${ARG_SCHEMA} migrations")
  orchestrator_library(${name} SOURCES "${out}" DEPS orchestrator::db)
endfunction()

# orchestrator_embedded_text(<name> NAMESPACE <ns> FUNCTION <fn> FILE <file>)
# Embeds <file>'s text into orchestrator::<name> as
# `const std::string& <ns>::<fn>()`, so a deployed binary carries it (e.g.
# the provisioning playbook) wherever it is installed.
function(orchestrator_embedded_text name)
  cmake_parse_arguments(ARG "" "NAMESPACE;FUNCTION;FILE" "" ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${name}_embedded.cc")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNAMESPACE=${ARG_NAMESPACE} -DFUNCTION=${ARG_FUNCTION}
            -DFILE=${ARG_FILE} -P ${PROJECT_SOURCE_DIR}/tools/cmake/EmbedText.cmake
    DEPENDS ${ARG_FILE} ${PROJECT_SOURCE_DIR}/tools/cmake/EmbedText.cmake
    COMMENT "Embedding ${ARG_FILE}")
  orchestrator_library(${name} SOURCES "${out}")
endfunction()

include(GoogleTest)

# orchestrator_test(<name> LABEL unit|integration|e2e SOURCES ... DEPS ...
#                   [RESOURCE_LOCK <lock>])
# Each gtest case becomes its own ctest test, so ctest counts and runs them
# one by one (in parallel with -j); tests holding the same RESOURCE_LOCK never
# run at the same time (e.g. podman-images: Podman 4.3 fails a build whose
# layer cache another process is removing images from).
function(orchestrator_test name)
  cmake_parse_arguments(ARG "" "LABEL;RESOURCE_LOCK" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${ORCHESTRATOR_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  set(lock "")
  if(ARG_RESOURCE_LOCK)
    set(lock RESOURCE_LOCK ${ARG_RESOURCE_LOCK})
  endif()
  gtest_discover_tests(${name} TEST_PREFIX "${name}." DISCOVERY_TIMEOUT 30
                       PROPERTIES LABELS ${ARG_LABEL} TIMEOUT 300 ${lock})
endfunction()

# orchestrator_static_executable(<name> SOURCES ...)
# An executable linked against the static archives of gRPC (without TLS),
# protobuf and Abseil instead of their shared libraries: it starts in about a
# millisecond instead of the ~14 ms the dynamic loader spends on Debian's 58
# shared libraries. For what starts inside every sandbox (the runner, the CLI
# agents call). SOURCES are compiled into it directly, so that no shared gRPC
# comes along through a library's link interface.
function(orchestrator_static_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${ORCHESTRATOR_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE orchestrator_proto_static)
  set(lib_dir /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
  file(GLOB absl_archives ${lib_dir}/libabsl_*.a)
  list(FILTER absl_archives EXCLUDE REGEX "(test|flags|failure_signal|leak_check|scoped_set_env)")
  target_link_libraries(${name} PRIVATE
    -Wl,--start-group
    ${lib_dir}/libgrpc++_unsecure.a ${lib_dir}/libgrpc_unsecure.a ${lib_dir}/libgpr.a
    ${lib_dir}/libupb.a ${lib_dir}/libaddress_sorting.a ${lib_dir}/libre2.a ${lib_dir}/libcares.a
    ${lib_dir}/libprotobuf.a ${absl_archives} ${lib_dir}/libz.a
    -Wl,--end-group
    Threads::Threads ${CMAKE_DL_LIBS})
  target_include_directories(${name} SYSTEM PRIVATE $<TARGET_PROPERTY:gRPC::grpc++,INTERFACE_INCLUDE_DIRECTORIES>)
endfunction()
