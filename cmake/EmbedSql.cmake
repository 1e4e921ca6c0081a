# trickle_embed_sql(<target> <namespace> <file.sql>...)
# Turns each .sql file into a `constexpr std::string_view k<Name>` in a
# generated header `<target>_sql.h`, so fixed SQL is kept in .sql files and
# never scattered through C++ string literals.
function(trickle_embed_sql target ns)
  set(header "${CMAKE_CURRENT_BINARY_DIR}/${target}_sql.h")
  set(script "${PROJECT_SOURCE_DIR}/cmake/embed_sql.cmake")
  set(files "")
  foreach(f ${ARGN})
    list(APPEND files "${CMAKE_CURRENT_SOURCE_DIR}/${f}")
  endforeach()
  string(REPLACE ";" "|" joined "${files}")
  add_custom_command(
    OUTPUT "${header}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${header} -DNS=${ns} -DFILES=${joined} -P ${script}
    DEPENDS ${files} ${script}
    COMMENT "Embedding SQL for ${target}"
    VERBATIM)
  target_sources(${target} PRIVATE "${header}")
  target_include_directories(${target} PUBLIC "${CMAKE_CURRENT_BINARY_DIR}")
endfunction()
