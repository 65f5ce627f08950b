DROP TABLE version_files;
DROP TABLE blobs;
DROP TABLE versions;
DROP TABLE projects;
