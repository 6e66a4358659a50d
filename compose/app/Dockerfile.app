# The image of an application (make up / make swarm-up with APP_PATH): the
# kit's image, the application's requirements, the application at /srv/app.
# compose/app_image.py builds it from a context it stages in
# compose/.generated/apps/NAME/:
#   app/      a copy of APP_PATH
#   wheels/   wheels of app/requirements.txt, built on the host (no package
#             index answers inside the build here)
# For an image of your own, with an index, see README "A production image".
ARG KIT_IMAGE=socketio-kit-app:local
FROM ${KIT_IMAGE}
ARG APP=
USER root
COPY wheels/ /tmp/app-wheels/
COPY app/requirements.txt /srv/app/requirements.txt
# Only the wheels, never an index; -c keeps the kit's own packages at the
# versions the kit's image holds (an application naming python-socketio gets
# the kit's, or the build stops naming the conflict); pip check proves
# nothing is missing.
RUN pip install --no-cache-dir --no-index --find-links /tmp/app-wheels \
        -c /srv/kit/constraints.txt -r /srv/app/requirements.txt \
 && pip check \
 && rm -rf /tmp/app-wheels
# Owned by root: the instances (user kit) read the application, never change it.
COPY app/ /srv/app/
USER kit
ENV APP=${APP} APP_PATH=/srv/app
