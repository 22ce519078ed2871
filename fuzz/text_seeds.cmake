# text_seeds.cmake — writes the text seeds of the fuzzers (cmake -P; run by the fuzz_seeds target).
#   -DSHARED_DIR=../shared  -DSOURCE_DIR=the repository  -DSEED_DIR=build/fuzz/seeds
# From ../shared when it is there: the first lines of every reference JSON Lines file
# (SEED_DIR/jsonl) and of every MOTChallenge text file (SEED_DIR/mot). Always: the repository's
# YAML configurations (SEED_DIR/config). Small seeds keep libFuzzer fast; the committed seeds in
# fuzz/corpus/<target> complement these.
set(lines_kept 6)

function(write_head source destination)
  file(STRINGS "${source}" lines LIMIT_COUNT ${lines_kept})
  list(JOIN lines "\n" text)
  file(WRITE "${destination}" "${text}\n")
endfunction()

file(MAKE_DIRECTORY ${SEED_DIR}/jsonl ${SEED_DIR}/mot ${SEED_DIR}/config)
if(IS_DIRECTORY "${SHARED_DIR}/reference")
  file(GLOB_RECURSE references "${SHARED_DIR}/reference/*.jsonl")
  foreach(reference IN LISTS references)
    get_filename_component(name "${reference}" NAME)
    write_head("${reference}" "${SEED_DIR}/jsonl/${name}")
  endforeach()
endif()
if(IS_DIRECTORY "${SHARED_DIR}/tracking")
  file(GLOB_RECURSE tracks "${SHARED_DIR}/tracking/*.txt")
  foreach(track IN LISTS tracks)
    get_filename_component(name "${track}" NAME)
    get_filename_component(folder "${track}" DIRECTORY)
    get_filename_component(sequence "${folder}" NAME)
    write_head("${track}" "${SEED_DIR}/mot/${sequence}_${name}")
  endforeach()
endif()
file(GLOB_RECURSE configurations "${SOURCE_DIR}/configs/*.yaml")
foreach(configuration IN LISTS configurations)
  get_filename_component(name "${configuration}" NAME)
  file(COPY_FILE "${configuration}" "${SEED_DIR}/config/${name}")
endforeach()
