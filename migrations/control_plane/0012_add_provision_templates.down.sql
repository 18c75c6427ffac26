DROP TABLE control_plane.provision_templates;
